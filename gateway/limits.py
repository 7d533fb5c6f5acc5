"""What the gateway checks before it accepts a turn, and how often it
refreshes a session stream's TTL: each kept in memory, so the common case
costs no Redis command."""

from __future__ import annotations

import time
from collections import deque

from redis.asyncio import Redis

from gateway.errors import ApiError
from shared.keys import Keys
from shared.models_file import ModelSpec
from shared.queue_status import pool_lag

#: How long a pool's queue depth, read from Redis, is trusted (seconds).
CAPACITY_TTL_S = 0.25


class RateLimiter:
    """At most ``per_minute`` turns per user in any sliding minute (per process)."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._seen: dict[str, deque[float]] = {}

    def check(self, uid: str) -> None:
        if self.per_minute <= 0:
            return
        t = time.monotonic()
        window = self._seen.setdefault(uid, deque())
        while window and window[0] <= t - 60:
            window.popleft()
        if len(window) >= self.per_minute:
            wait = int(window[0] + 60 - t) + 1
            raise ApiError("rate_limited", f"too many messages; try again in {wait} s")
        window.append(t)


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
            lag, _pending = await pool_lag(self.redis, self.keys, spec.pool)
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
