"""The desired state in Redis, for a fleet: every replica reads and writes one state, and follows it.

Keys under ``state.key`` (``model-server`` by default):

    <key>:state              the desired state (JSON), with its generation
    <key>:generation         the generation alone, which a write compares
    <key>:changes            a pub/sub channel: each write publishes its generation
    <key>:replica:<name>     each replica's report (JSON), expiring unless renewed

A write is one Lua script (atomic in Redis): it compares the stored generation with the one the change
was based on, and only then stores and publishes. Run Redis with persistence on (``appendonly yes``):
the state must outlive a restart of Redis. Calls time out after ``state.timeout_seconds``, without
retries: an unreachable Redis makes admin calls answer 503 at once, and replicas serve on.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from serving.fleet.backends.base import BackendUnreachable, StaleState, StateBackend
from serving.fleet.desired import DesiredState

# KEYS: state, generation, channel. ARGV: the generation the change was based on, the new state's JSON
# (its generation one above). Atomic: Redis runs a script alone.
COMPARE_AND_SET = """
local current = tonumber(redis.call('GET', KEYS[2]) or '0')
if current ~= tonumber(ARGV[1]) then return {0, current} end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('SET', KEYS[2], current + 1)
redis.call('PUBLISH', KEYS[3], current + 1)
return {1, current + 1}
"""


class RedisBackend(StateBackend):
    kind = "redis"

    def __init__(self, url: str, key: str, timeout: float):
        self.url, self.key = url, key
        self.client = aioredis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0), decode_responses=True)
        self.script = self.client.register_script(COMPARE_AND_SET)
        self.pubsub: aioredis.client.PubSub | None = None

    def describe(self) -> str:
        parts = urllib.parse.urlsplit(self.url)  # no password in messages
        where = parts.path if parts.scheme == "unix" else f"{parts.hostname}:{parts.port or 6379}{parts.path or '/0'}"
        return f"redis {where} key {self.key}"

    async def read(self) -> DesiredState | None:
        try:
            stored = await self.client.get(f"{self.key}:state")
        except RedisError as exc:
            raise BackendUnreachable(self, exc) from None
        return json.loads(stored) if stored else None

    async def write(self, state: DesiredState, based_on: int) -> int:
        try:
            keys = [f"{self.key}:state", f"{self.key}:generation", f"{self.key}:changes"]
            written, generation = await self.script(keys=keys, args=[based_on, json.dumps({**state, "generation": based_on + 1})])
        except RedisError as exc:
            raise BackendUnreachable(self, exc) from None
        if not written:
            raise StaleState(based_on, int(generation))
        return int(generation)

    async def wait_change(self, timeout: float) -> None:
        try:
            if self.pubsub is None:
                self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)
                await self.pubsub.subscribe(f"{self.key}:changes")
                return  # (re)subscribed: anything may have changed meanwhile
            await self.pubsub.get_message(timeout=timeout)
        except RedisError as exc:
            pubsub, self.pubsub = self.pubsub, None
            if pubsub is not None:
                await pubsub.aclose()
            raise BackendUnreachable(self, exc) from None

    async def put_report(self, replica: str, report: dict, ttl: float) -> None:
        try:
            await self.client.set(f"{self.key}:replica:{replica}", json.dumps(report), px=int(ttl * 1000))
        except RedisError as exc:
            raise BackendUnreachable(self, exc) from None

    async def reports(self) -> dict[str, dict]:
        prefix = f"{self.key}:replica:"
        try:
            keys = sorted([key async for key in self.client.scan_iter(match=prefix + "*", count=100)])
            values = await self.client.mget(keys) if keys else []
        except RedisError as exc:
            raise BackendUnreachable(self, exc) from None
        return {key[len(prefix) :]: json.loads(value) for key, value in zip(keys, values, strict=True) if value}

    shares_feedback = True
    FEEDBACK_KEPT = 10_000  # feedback calls kept in the stream (each up to feedback.max_items labels)

    async def put_feedback(self, origin: str, model: str, items: list[dict]) -> None:
        try:
            await self.client.xadd(f"{self.key}:feedback", {"origin": origin, "model": model, "items": json.dumps(items)}, maxlen=self.FEEDBACK_KEPT, approximate=True)
        except RedisError as exc:
            raise BackendUnreachable(self, exc) from None

    async def feedback_since(self, cursor: str | None) -> tuple[str | None, list[dict]]:
        stream = f"{self.key}:feedback"
        try:
            if cursor is None:  # from now on: the newest entry's id, else the stream's beginning
                newest: Any = await self.client.xrevrange(stream, count=1)
                return (str(newest[0][0]) if newest else "0-0"), []
            found: Any = await self.client.xread({stream: cursor}, count=100)
        except RedisError as exc:
            raise BackendUnreachable(self, exc) from None
        entries = [entry for _, batch in found for entry in batch]
        if not entries:
            return cursor, []
        return str(entries[-1][0]), [{"origin": fields["origin"], "model": fields["model"], "items": json.loads(fields["items"])} for _, fields in entries]

    async def close(self) -> None:
        if self.pubsub is not None:
            await self.pubsub.aclose()
        await self.client.aclose()
