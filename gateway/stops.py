"""Stop requests, made cheap for everyone else: per-user rate limit and one
announcement per turn.

Every worker hears every stop announcement (one pub/sub channel), so a
flood of stops costs the whole pool. Two scripts bound it, each on keys of
one slot:

- a fixed one-minute window per user (``user_stops``): past
  ``per_minute`` stops the frame is refused with ``rate_limited``;
- ``SET cancel(turn) NX`` and ``PUBLISH`` together
  (``shared/stop_requests.py``): only the first stop of a turn is
  announced; a repeat changes nothing and costs no worker anything. (Turn
  ids are 128 random bits, shown only to their owner, so nobody else can
  be first; workers honour only the owner's stop anyway.)
"""

from __future__ import annotations

from redis.asyncio import Redis

from gateway.errors import ApiError
from shared.keys import Keys
from shared.stop_requests import StopAnnouncer

#: INCR with the window's expiry set on the first stop of the window.
_RATE = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
if n > tonumber(ARGV[2]) then return redis.call('TTL', KEYS[1]) end
return -1
"""

#: Length of the rate window (seconds).
STOP_WINDOW_S = 60


class StopGate:
    def __init__(self, redis: Redis, keys: Keys, per_minute: int) -> None:
        self.keys = keys
        self.per_minute = per_minute
        self._rate = redis.register_script(_RATE)
        self._announcer = StopAnnouncer(redis, keys)
        self.refused = 0

    async def check(self, uid: str) -> None:
        """Count one stop of ``uid``'s; refuse it past the per-minute limit."""
        if self.per_minute <= 0:
            return
        wait = int(
            await self._rate(
                keys=[self.keys.user_stops(uid)], args=[STOP_WINDOW_S, self.per_minute]
            )
        )
        if wait >= 0:
            self.refused += 1
            raise ApiError("rate_limited", f"too many stops; try again in {max(wait, 1)} s")

    async def announce(self, uid: str, turn_id: str) -> bool:
        """Record the stop and tell the workers; False when it was asked before."""
        return await self._announcer.announce(uid, turn_id)
