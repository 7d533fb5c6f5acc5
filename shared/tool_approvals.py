"""Approvals of "ask" tool calls (issue 15, docs/tools.md), kept in the
turn's step checkpoint (``Keys.turn_steps``, one hash: one slot).

The worker marks a call as waiting (``ask:<call id>``) before it sends
``approval_required``; the gateway records the user's answer as
``approval:<call id>:<user id>`` (``yes``/``no``), only for a call that is
waiting, only from the turn's own user (``owner``, written by the worker's
claim), and only once (HSETNX), in one script: another user's answer is
refused exactly as a call that does not exist (nothing revealed). The
worker reads only the answer of the turn's own user, too.
A turn taken over by another worker finds both in the checkpoint.
"""

from __future__ import annotations

from redis.asyncio import Redis

from shared.keys import Keys

_RECORD = """
if redis.call('HEXISTS', KEYS[1], 'ask:' .. ARGV[1]) == 0 then return -1 end
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner and owner ~= ARGV[2] then return -1 end
return redis.call('HSETNX', KEYS[1], 'approval:' .. ARGV[1] .. ':' .. ARGV[2], ARGV[3])
"""


def waiting_field(call_id: str) -> str:
    return f"ask:{call_id}"


def answer_field(call_id: str, user_id: str) -> str:
    return f"approval:{call_id}:{user_id}"


class Approvals:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.keys = keys
        self._record = redis.register_script(_RECORD)

    async def record(self, user_id: str, turn_id: str, call_id: str, approve: bool) -> bool:
        """The user's answer; False when no such call is waiting (unknown,
        finished, or answered before)."""
        got = await self._record(
            keys=[self.keys.turn_steps(turn_id)],
            args=[call_id, user_id, "yes" if approve else "no"],
        )
        return int(got) == 1
