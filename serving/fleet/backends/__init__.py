"""Desired-state backends, one registry: a new backend is one module and one line in ``BACKENDS``.

local   a file in this server's runtime directory (a fresh start serves configuration.yaml)
file    a durable file (state.path): one machine, or replicas sharing a disk
redis   a Redis server (state.url): a fleet
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from config import Config
from serving.fleet.backends.base import BackendUnreachable, StaleState, StateBackend
from serving.fleet.backends.files import FileBackend


def _redis(config: Config, runtime: Path) -> StateBackend:
    from serving.fleet.backends.redis import RedisBackend  # redis-py only where it is used

    assert config.state.url is not None  # the configuration's check
    return RedisBackend(config.state.url, config.state.key, config.state.timeout_seconds)


BACKENDS: dict[str, Callable[[Config, Path], StateBackend]] = {
    "local": lambda config, runtime: FileBackend(runtime / "desired.json"),
    "file": lambda config, runtime: FileBackend(config.state_file() or runtime / "desired.json"),
    "redis": _redis,
}


def open_backend(config: Config, runtime: Path) -> StateBackend:
    return BACKENDS[config.state.backend](config, runtime)


__all__ = ["BACKENDS", "BackendUnreachable", "StaleState", "StateBackend", "open_backend"]
