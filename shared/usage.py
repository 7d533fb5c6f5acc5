"""The day's usage counters: one hash per user per UTC day (``turns:<model>``,
``prompt:<model>``, ``completion:<model>``) and everyone's total of the day.

The worker that finishes a turn (``worker/turn.py``'s ``finish``, also for
failures and dead letters) runs one script on the user's keys: it frees the
turn's slot (taken by ``shared/user_limits.py``'s acquire script) and, only
if the slot was still held, adds the turn's usage to the day's counters. So
a turn finished twice (at-least-once delivery) is counted once.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared.keys import USAGE_TTL_S, Keys

log = logging.getLogger(__name__)

# KEYS: the user's unfinished turns, the usage hash of the day it finished.
# ARGV: turn id, model, prompt tokens, completion tokens, usage TTL (s).
# Counted only if the turn's slot was still held: a turn finished twice
# (redelivered) counts once.
_RELEASE = """
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then
  return 0
end
local model = ARGV[2]
redis.call('HINCRBY', KEYS[2], 'turns:' .. model, 1)
redis.call('HINCRBY', KEYS[2], 'prompt:' .. model, ARGV[3])
redis.call('HINCRBY', KEYS[2], 'completion:' .. model, ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[5])
return 1
"""


def usage_day(ts: float) -> str:
    """The UTC day (``YYYY-MM-DD``) a timestamp counts towards."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


def seconds_to_next_day(ts: float) -> int:
    moment = datetime.fromtimestamp(ts, UTC)
    midnight = datetime(moment.year, moment.month, moment.day, tzinfo=UTC) + timedelta(days=1)
    return max(1, math.ceil((midnight - moment).total_seconds()))


class UsageRecorder:
    """The worker's side: free a finished turn's slot and count its usage."""

    def __init__(self, keys: Keys, *, clock: Callable[[], float] = time.time) -> None:
        self.keys = keys
        self._clock = clock

    def queue_release(
        self,
        pipe: Any,
        uid: str,
        turn_id: str,
        model: str,
        prompt_tokens: int,
        completion_tokens: int,
    ) -> Release:
        """Queue the release on ``pipe`` (a pipeline of the finishing turn);
        give what it returns, with the pipeline's replies, to ``count_total``.

        EVAL with the script's text, not EVALSHA: a pipeline holding a
        registered script asks Redis whether it knows it (SCRIPT EXISTS) on
        every execute, a round trip per turn; Redis caches an EVAL'd script
        by its hash, so the text costs only its bytes."""
        day = usage_day(self._clock())
        pipe.eval(
            _RELEASE,
            2,
            self.keys.user_turns(uid),
            self.keys.user_usage(uid, day),
            turn_id,
            model,
            max(0, prompt_tokens),
            max(0, completion_tokens),
            USAGE_TTL_S,
        )
        return Release(
            len(pipe.command_stack) - 1,
            day,
            model,
            max(0, prompt_tokens),
            max(0, completion_tokens),
        )

    async def count_total(self, redis: Redis, release: Release, replies: list[Any]) -> None:
        """Add a turn counted for its user to everyone's total of the day
        (``usage_total``, the console's per-model chart): only when the user's
        release counted it, so a turn finished twice is counted once here too.
        Another slot than the user's, hence after their script, not in it."""
        if replies[release.index] != 1:
            return
        key = self.keys.usage_total(release.day)
        pipe = redis.pipeline(transaction=False)
        pipe.hincrby(key, f"turns:{release.model}", 1)
        pipe.hincrby(key, f"prompt:{release.model}", release.prompt_tokens)
        pipe.hincrby(key, f"completion:{release.model}", release.completion_tokens)
        pipe.expire(key, USAGE_TTL_S)
        try:
            await pipe.execute()
        except RedisError as exc:  # the turn is done and counted for its user
            log.warning("could not add a turn to the day's totals: %s", exc)


@dataclass(frozen=True, slots=True)
class Release:
    """A queued release: where its reply is in the pipeline, and what it counts."""

    index: int
    day: str
    model: str
    prompt_tokens: int
    completion_tokens: int
