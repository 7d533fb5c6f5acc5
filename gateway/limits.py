"""The user's turn limits (per minute, at once, tokens per day: one script in
Redis), and how often a turn refreshes its session stream's TTL (kept in
memory, so the common case costs no command). The pool's queue and the
user's storage are checked by ``gateway/admission.py``."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.errors import ApiError
from shared.keys import Keys
from shared.user_limits import LimitExceeded, TurnLimits, UserLimits


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

    async def forget(self, uid: str, turn_id: str) -> None:
        """Give back the slot of a turn that will not be queued after all."""
        with contextlib.suppress(RedisError):
            await self._limits.forget(uid, turn_id)

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
