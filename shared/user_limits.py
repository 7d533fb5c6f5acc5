"""Per-user turn limits and usage counters, shared by every gateway and worker.

A gateway accepting a turn runs one Lua script on the user's keys (one hash
tag, so one slot): it drops concurrency slots whose release was lost, then
checks the daily token budget, the turns of the last minute and the turns
still unfinished, and on success takes a slot and records the turn. Being
one script, two gateways can never both let a user's last allowed turn
through.

The worker that finishes a turn runs the other script (``shared/usage.py``,
with the day's counters; re-exported here): it frees the turn's slot
and, only if the slot was still held, adds the turn's usage to the day's
counters. So a turn finished twice (at-least-once delivery) is counted
once, and a slot whose release is lost frees itself at its deadline.

The day's counters are one hash per user per UTC day with three fields per
model (``turns:<model>``, ``prompt:<model>``, ``completion:<model>``; a
day's totals are their sums: three writes a turn rather than six), kept
``USAGE_TTL_S``: the admin page reads a user's 30-day chart as 30
``HGETALL``\\s of one slot.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from redis.asyncio import Redis

from shared.keys import TURN_RATE_WINDOW_S, TURN_SLOT_TTL_S, USAGE_TTL_S, Keys
from shared.usage import Release, UsageRecorder, seconds_to_next_day, usage_day

__all__ = [
    "CONCURRENT_RETRY_S",
    "LimitExceeded",
    "Release",
    "TurnLimits",
    "UsageRecorder",
    "UserLimits",
    "seconds_to_next_day",
    "usage_day",
]

# KEYS: the user's unfinished turns, turns of the last minute, today's usage,
# the user's limits set by an admin (their own or their groups').
# ARGV: turn id, now (ms), slot deadline (ms), per minute, at once, daily
# token budget, window (ms), daily turn quota, usage TTL (s). The budget and
# the turn quota are the settings' defaults, replaced by the limits hash's
# ``tokens_day`` / ``turns_day`` when an admin set them. Limits of 0 are off;
# the minute's set is kept only when its limit is on (the unfinished turns
# always: they make the usage count exactly once). Turns today are the
# finished ones counted in the usage hash plus the unfinished ones. A quota
# refusal marks the day's hash (``hit:*``) so the gateway logs the first one.
_ACQUIRE = """
local now = tonumber(ARGV[2])
local per_minute = tonumber(ARGV[4])
local concurrent = tonumber(ARGV[5])
local budget = tonumber(ARGV[6])
local window = tonumber(ARGV[7])
local turns_day = tonumber(ARGV[8])
local own = redis.call('HMGET', KEYS[4], 'tokens_day', 'turns_day')
if own[1] then budget = tonumber(own[1]) end
if own[2] then turns_day = tonumber(own[2]) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if budget > 0 or turns_day > 0 then
  local used = 0
  local finished = 0
  local usage = redis.call('HGETALL', KEYS[3])
  for i = 1, #usage, 2 do
    local field = usage[i]
    if string.sub(field, 1, 7) == 'prompt:' or string.sub(field, 1, 11) == 'completion:' then
      used = used + tonumber(usage[i + 1])
    elseif string.sub(field, 1, 6) == 'turns:' then
      finished = finished + tonumber(usage[i + 1])
    end
  end
  local hit = nil
  if budget > 0 and used >= budget then
    hit = {'budget', budget, 'hit:tokens'}
  elseif turns_day > 0 and finished + redis.call('ZCARD', KEYS[1]) >= turns_day then
    hit = {'turns', turns_day, 'hit:turns'}
  end
  if hit then
    local first = redis.call('HSETNX', KEYS[3], hit[3], '1')
    redis.call('EXPIRE', KEYS[3], ARGV[9])
    return {hit[1], hit[2], first}
  end
end
if per_minute > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
  if redis.call('ZCARD', KEYS[2]) >= per_minute then
    local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
    return {'rate', tonumber(oldest[2]) + window - now, 0}
  end
end
if concurrent > 0 then
  local running = redis.call('ZCARD', KEYS[1])
  if running >= concurrent then
    return {'concurrent', running, 0}
  end
end
local deadline = tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], deadline, ARGV[1])
redis.call('PEXPIRE', KEYS[1], deadline - now)
if per_minute > 0 then
  redis.call('ZADD', KEYS[2], now, ARGV[1])
  redis.call('PEXPIRE', KEYS[2], window)
end
return {'ok', 0, 0}
"""

LimitKind = Literal["budget", "turns", "rate", "concurrent"]

#: How soon a user who has too many replies running is told to try again:
#: there is no telling when one finishes, so a short poll interval.
CONCURRENT_RETRY_S = 2


@dataclass(frozen=True, slots=True)
class TurnLimits:
    """0 turns a limit off."""

    per_minute: int = 0
    max_concurrent: int = 0
    daily_token_budget: int = 0
    #: Turns per user per UTC day (the default of the per-user and per-group
    #: quotas an admin sets).
    daily_turn_quota: int = 0


class LimitExceeded(Exception):
    """A turn refused by a per-user limit, with when to try again (seconds)."""

    def __init__(
        self, kind: LimitKind, retry_after: int, message: str, *, first: bool = False
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.retry_after = retry_after
        self.message = message
        #: A daily quota's first refusal of the day for this user (worth a
        #: line in the audit log; the ones after it are not).
        self.first = first


class UserLimits:
    """The gateway's side: take a slot for a turn, or refuse it."""

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        limits: TurnLimits,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.limits = limits
        self._clock = clock
        self._acquire = redis.register_script(_ACQUIRE)

    async def acquire(self, uid: str, turn_id: str) -> None:
        """Record ``turn_id`` as running for ``uid``; LimitExceeded if a limit
        is reached (nothing is recorded then)."""
        now = self._clock()
        now_ms = int(now * 1000)
        limits = self.limits
        kind, value, first = await self._acquire(
            keys=[
                self.keys.user_turns(uid),
                self.keys.user_recent_turns(uid),
                self.keys.user_usage(uid, usage_day(now)),
                self.keys.user_limits(uid),
            ],
            args=[
                turn_id,
                now_ms,
                now_ms + TURN_SLOT_TTL_S * 1000,
                limits.per_minute,
                limits.max_concurrent,
                limits.daily_token_budget,
                TURN_RATE_WINDOW_S * 1000,
                limits.daily_turn_quota,
                USAGE_TTL_S,
            ],
        )
        if kind == "ok":
            return
        if kind in ("budget", "turns"):
            wait = seconds_to_next_day(now)
            what = (
                f"today's budget of {int(value):,} tokens"
                if kind == "budget"
                else f"today's quota of {int(value):,} messages"
            )
            raise LimitExceeded(
                kind,
                wait,
                f"you have used {what}; it renews at midnight UTC, in {_duration(wait)}",
                first=bool(first),
            )
        if kind == "rate":
            wait = max(1, math.ceil(int(value) / 1000))
            raise LimitExceeded(
                "rate",
                wait,
                f"you have sent {limits.per_minute} messages in the last minute; "
                f"try again in {_duration(wait)}",
            )
        raise LimitExceeded(
            "concurrent",
            CONCURRENT_RETRY_S,
            f"{int(value)} of your replies are still being written (the limit is "
            f"{limits.max_concurrent}); send this when one has finished",
        )

    async def forget(self, uid: str, turn_id: str) -> None:
        """Undo ``acquire`` for a turn that was not queued after all (a
        duplicate frame, a failed write): it neither runs nor counts."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.zrem(self.keys.user_turns(uid), turn_id)
        pipe.zrem(self.keys.user_recent_turns(uid), turn_id)
        await pipe.execute()


def _duration(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{math.ceil(seconds / 60)} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"
