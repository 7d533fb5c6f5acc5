"""What the gateway checks before it accepts a turn (the user's limits, in
Redis; the queue's depth, read now and then), and how often it refreshes a
session stream's TTL (kept in memory, so the common case costs no command)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from gateway.errors import ApiError
from shared.keys import WORKER_GROUP, Keys
from shared.models_file import ModelSpec
from shared.user_limits import LimitExceeded, TurnLimits, UserLimits

#: How long a pool's queue depth, read from Redis, is trusted (seconds).
CAPACITY_TTL_S = 0.25


class TurnQuota:
    """Per-user limits on turns (per minute, at once, tokens per day), shared
    by every gateway through one Lua script on the user's keys
    (``shared/user_limits.py``); the worker finishing a turn releases it."""

    def __init__(self, redis: Redis, keys: Keys, limits: TurnLimits) -> None:
        self._limits = UserLimits(redis, keys, limits)
        self.refusals = 0

    async def take(self, uid: str, turn_id: str) -> None:
        """Take a slot for ``turn_id`` or refuse it with ``rate_limited``."""
        try:
            await self._limits.acquire(uid, turn_id)
        except LimitExceeded as exc:
            self.refusals += 1
            raise ApiError("rate_limited", exc.message, retry_after=exc.retry_after) from exc

    async def settle(
        self, uid: str, turn_id: str, writes: Awaitable[list[Exception | None] | None]
    ) -> list[Exception | None] | None:
        """Await the pipeline that queues the turn (its LAST command); give
        the slot back if the turn was not queued after all: a duplicate frame
        (None), a failed queueing, or an exception."""
        try:
            errors = await writes
        except BaseException:
            with contextlib.suppress(RedisError):
                await self._limits.forget(uid, turn_id)
            raise
        if errors is None or errors[-1] is not None:
            await self._limits.forget(uid, turn_id)
        return errors


class QueueGuard:
    """Refuse a turn at once (``busy``) rather than queue without bound.

    The queue depth (the consumer group's lag) is read at most every
    ``CAPACITY_TTL_S`` per pool and counted up locally in between, so the
    check costs no Redis command on most turns.
    """

    def __init__(self, redis: Redis, keys: Keys, max_queued_turns: int) -> None:
        self.redis = redis
        self.keys = keys
        self.max_queued_turns = max_queued_turns
        self.refusals = 0
        self._lag: dict[str, tuple[int, float]] = {}
        self._queued: dict[str, int] = {}

    async def check(self, spec: ModelSpec) -> None:
        t = time.monotonic()
        seen = self._lag.get(spec.pool)
        if seen is None or t - seen[1] > CAPACITY_TTL_S:
            lag = await self._read_lag(spec.pool)
            self._lag[spec.pool] = (lag, t)
            self._queued[spec.pool] = 0
        else:
            lag = seen[0]
        waiting = lag + self._queued.get(spec.pool, 0)
        if waiting >= self.max_queued_turns:
            self.refusals += 1
            raise ApiError(
                "busy", f"{waiting} replies are already waiting for {spec.id}; try again shortly"
            )

    def queued(self, pool: str) -> None:
        """One more turn queued by this process since the depth was read."""
        self._queued[pool] = self._queued.get(pool, 0) + 1

    async def _read_lag(self, pool: str) -> int:
        try:
            groups = await self.redis.xinfo_groups(self.keys.prompts(pool))
        except ResponseError:  # no stream yet: nothing is waiting
            return 0
        for group in groups:
            if group.get("name") == WORKER_GROUP:
                return int(group.get("lag") or 0)
        # No worker has ever joined: everything queued is waiting.
        return int(await self.redis.xlen(self.keys.prompts(pool)))


class SessionTtl:
    """Whether a turn should (re)set its session stream's TTL.

    Once per session every third of the TTL is enough: the stream then
    expires between 2/3 and all of the TTL after its last turn (and the
    reader keeps the streams of connected sockets alive meanwhile), at a
    fraction of a command per turn instead of one.
    """

    def __init__(self, ttl: int) -> None:
        self.ttl = ttl
        self._set_at: dict[str, float] = {}

    def due(self, session_id: str) -> bool:
        t = time.monotonic()
        last = self._set_at.get(session_id)
        if last is not None and t - last < self.ttl / 3:
            return False
        self._set_at[session_id] = t
        if len(self._set_at) > 100_000:
            cutoff = t - self.ttl / 3
            self._set_at = {k: v for k, v in self._set_at.items() if v > cutoff}
        return True
