"""What the gateway checks in memory before it accepts a turn, and how often
it refreshes a session stream's TTL, so the common case costs no Redis
command. (What it checks in Redis is in ``gateway/admission.py``.)"""

from __future__ import annotations

import time
from collections import deque

from gateway.errors import ApiError


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
