"""Every desired-state backend (serving/fleet/backends/) against the same contract: the file backend on
disk and the Redis backend on a real redis-server: compare-and-set, notices, reports that expire, and
an unreachable backend reported as such (503), not as an error of the caller's."""

from __future__ import annotations

import asyncio
import time

import pytest

from serving.fleet import desired
from serving.fleet.backends import BackendUnreachable, StaleState
from serving.fleet.backends.files import FileBackend
from serving.fleet.backends.redis import RedisBackend
from tests.e2e.conftest import free_port
from tests.redis_server import RedisServer

STATE = {"generation": 0, "models": {"m": {"versions": ["v1"], "aliases": {}, "default_version": "v1", "shadow": None, "promotions": []}}}


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(params=["file", "redis"])
def backend(request, tmp_path, redis_server):
    if request.param == "file":
        return lambda: FileBackend(tmp_path / "state.json")
    key = f"test-{time.monotonic_ns()}"
    return lambda: RedisBackend(redis_server.url, key, timeout=1.0)


def run(coroutine):
    return asyncio.run(coroutine)


def test_writes_compare_and_set_the_generation(backend):
    async def scenario():
        store = backend()
        assert await store.read() is None
        assert await store.write(STATE, 0) == 1
        with pytest.raises(StaleState, match="based on generation 0, the current one is 1") as stale:
            await store.write(STATE, 0)
        assert stale.value.current == 1 and stale.value.status == 409
        changed = {**STATE, "models": {**STATE["models"], "n": STATE["models"]["m"]}}
        assert await store.write(changed, 1) == 2
        read = await store.read()
        assert read["generation"] == 2 and set(read["models"]) == {"m", "n"}
        await store.close()

    run(scenario())


def test_concurrent_read_change_write_rounds_lose_nothing(backend):
    """Eight writers, each adding its own version through read, change, compare-and-set, retrying when stale."""

    async def writer(store, version):
        while True:
            state = await store.read()
            desired.add_version(state, "m", version)
            try:
                return await store.write(state, state["generation"])
            except StaleState:
                await asyncio.sleep(0)

    async def scenario():
        stores = [backend() for _ in range(8)]
        await stores[0].write(STATE, 0)
        generations = await asyncio.gather(*(writer(store, f"w{i}") for i, store in enumerate(stores)))
        final = await stores[0].read()
        assert sorted(generations) == list(range(2, 10)) and final["generation"] == 9
        assert sorted(final["models"]["m"]["versions"]) == sorted(["v1", *(f"w{i}" for i in range(8))])
        for store in stores:
            await store.close()

    run(scenario())


def test_a_write_wakes_a_waiting_follower(backend):
    async def scenario():
        follower, writer = backend(), backend()
        await writer.write(STATE, 0)
        await follower.wait_change(0.5)  # the first call may return at once: anything may have changed before
        started = time.monotonic()
        waiting = asyncio.create_task(follower.wait_change(5.0))
        await asyncio.sleep(0.3)
        await writer.write(STATE, 1)
        await waiting
        assert 0.25 < time.monotonic() - started < 2.0  # woken by the write, not by the timeout
        await follower.close()
        await writer.close()

    run(scenario())


def test_reports_expire(backend):
    async def scenario():
        store = backend()
        await store.put_report("a", {"generation": 3}, ttl=0.5)
        await store.put_report("b", {"generation": 4}, ttl=30)
        assert await store.reports() == {"a": {"generation": 3}, "b": {"generation": 4}}
        await asyncio.sleep(0.7)
        assert await store.reports() == {"b": {"generation": 4}}
        await store.close()

    run(scenario())


def test_an_unreachable_redis_is_a_503_naming_it_without_its_password():
    async def scenario():
        store = RedisBackend(f"redis://:secret-password@127.0.0.1:{free_port()}/0", "k", timeout=0.5)
        started = time.monotonic()
        for call in (store.read(), store.write(STATE, 0), store.put_report("a", {}, 1), store.reports(), store.wait_change(1)):
            with pytest.raises(BackendUnreachable) as refused:
                await call
            assert refused.value.status == 503 and "redis 127.0.0.1:" in refused.value.message and "secret" not in refused.value.message
        assert time.monotonic() - started < 5  # no retries, no hanging
        await store.close()

    run(scenario())


def test_redis_keeps_the_state_across_a_restart(tmp_path):
    server = RedisServer(tmp_path / "redis").start()

    async def write():
        store = RedisBackend(server.url, "k", timeout=1.0)
        await store.write(STATE, 0)
        await store.close()

    async def read():
        store = RedisBackend(server.url, "k", timeout=1.0)
        try:
            return await store.read()
        finally:
            await store.close()

    try:
        run(write())
        time.sleep(1.5)  # appendfsync everysec (Redis's default): a write is on disk within a second
        server.stop(kill=True)  # no shutdown save: the append-only file must hold it
        server.start()
        assert run(read())["generation"] == 1
    finally:
        server.stop()


@pytest.mark.parametrize(
    "url,where",
    [("redis://127.0.0.1:6380/2", "redis 127.0.0.1:6380/2 key k"), ("redis://:pw@redis", "redis redis:6379/0 key k"), ("unix:///run/redis.sock", "redis /run/redis.sock key k")],
)
def test_the_redis_backend_names_where_it_is_without_secrets(url, where):
    assert RedisBackend(url, "k", timeout=1.0).describe() == where


def test_feedback_sent_through_redis_reaches_a_reader_from_its_cursor_on(backend):
    """Redis relays feedback between replicas (from the moment a reader starts); the file backend, one
    replica's, relays none."""

    async def scenario():
        store = backend()
        try:
            cursor, nothing = await store.feedback_since(None)
            await store.put_feedback("a", "clothes", [{"request_id": "r-1", "example": 0, "label": "Bag", "slice": None}])
            await store.put_feedback("b", "clothes", [{"request_id": "r-2", "example": 1, "label": "Coat", "slice": "night"}])
            cursor, entries = await store.feedback_since(cursor)
            again = await store.feedback_since(cursor)
            return store.shares_feedback, nothing, entries, again[1]
        finally:
            await store.close()

    shares, nothing, entries, again = run(scenario())
    assert nothing == [] and again == []
    if shares:
        assert [(e["origin"], e["items"][0]["request_id"]) for e in entries] == [("a", "r-1"), ("b", "r-2")]
        assert entries[1]["items"][0] == {"request_id": "r-2", "example": 1, "label": "Coat", "slice": "night"}
    else:
        assert entries == []
