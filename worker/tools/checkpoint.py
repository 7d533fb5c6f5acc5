"""A tool turn's completed steps in Redis (``Keys.turn_steps``: one hash
under the turn's hash tag), written before the turn moves on, so a worker
that takes the turn over continues where the dead one stopped.

Fields:

- ``step:<i>``: the model's output of step ``i`` (its text and the calls it
  asked for, without results), written before any of those calls runs;
- ``start:<i>:<call id>``: set (HSETNX) just before the call is sent to its
  MCP server;
- ``done:<i>:<call id>``: the finished call (status, result, duration),
  written before its ``tool_result`` event.

A call with ``start`` but no ``done`` was in flight when its worker died: it
may or may not have had its effect. The loop runs it again only when the
tool is marked idempotent; otherwise the model is told it was interrupted
(``worker/tools/loop.py``). A completed call is never run again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis

from shared.conversation import Message
from shared.keys import TOOL_STEPS_TTL_S, Keys
from shared.store import ConversationStore
from shared.tool_approvals import answer_field, waiting_field
from shared.tools import ToolCall, ToolStep
from worker.tools.fence import Fence, Superseded

__all__ = ["Checkpoint", "Saved", "Superseded"]


@dataclass(slots=True)
class Saved:
    """What an earlier delivery of the turn recorded."""

    steps: list[ToolStep] = field(default_factory=list)
    #: (step, call id) of calls that were started and never finished.
    in_flight: set[tuple[int, str]] = field(default_factory=set)


#: A write by the worker that holds the turn: ``gen`` must still be its
#: own (a worker that took the turn over has bumped it); then HSET or HSETNX
#: and the key's TTL. Returns the field's value, or -1 when superseded.
_WRITE = """
if (redis.call('HGET', KEYS[1], 'gen') or '0') ~= ARGV[1] then return -1 end
if ARGV[2] == 'nx' then
  redis.call('HSETNX', KEYS[1], ARGV[3], ARGV[4])
else
  redis.call('HSET', KEYS[1], ARGV[3], ARGV[4])
end
redis.call('EXPIRE', KEYS[1], ARGV[5])
return redis.call('HGET', KEYS[1], ARGV[3])
"""

#: A delivery's claim: its generation (``fence.py``) becomes the hash's
#: ``gen`` unless a later one is there already (then every write of this
#: delivery is refused), the turn's user is recorded as its ``owner`` (only
#: theirs are answers to its approvals: ``shared/tool_approvals.py``), and
#: what earlier deliveries recorded is read, in
#: the same script: a call started before the claim is seen as started.
_CLAIM = """
if tonumber(redis.call('HGET', KEYS[1], 'gen') or '0') < tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'gen', ARGV[1])
end
redis.call('HSET', KEYS[1], 'owner', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return redis.call('HGETALL', KEYS[1])
"""


class Checkpoint:
    """One turn's checkpoint, as written by one delivery of the turn.

    ``claim`` (at the start of a delivery) takes a new generation from the
    turn's fence (``fence.py``) and makes it the hash's ``gen``; every later
    write checks it in the same script (a fencing token), and so does the
    write of the reply (``store_reply``), so a worker that was only paused,
    not dead, cannot write over, run calls behind, or answer for the worker
    that took its turn over. The takeover reads the checkpoint as it sets
    ``gen``, so a call the old worker started before is seen as started (in
    flight), and one it tries to start after is refused."""

    def __init__(self, redis: Redis, keys: Keys, turn_id: str, conversation_id: str) -> None:
        self.redis = redis
        self.key = keys.turn_steps(turn_id)
        self.fence = Fence(redis, keys, conversation_id, turn_id)
        self.gen = "0"
        self._write = redis.register_script(_WRITE)
        self._claim = redis.register_script(_CLAIM)

    async def claim(self, owner: str) -> Saved:
        """Take the turn (a new generation) for its user ``owner``, and read
        what earlier deliveries did."""
        self.gen = str(await self.fence.claim())
        got = await self._claim(keys=[self.key], args=[self.gen, TOOL_STEPS_TTL_S, owner])
        raw = dict(zip(got[::2], got[1::2], strict=True))
        return self._parse({str(k): str(v) for k, v in raw.items()})

    async def store_reply(self, store: ConversationStore, reply: Message, owner: str) -> Any:
        """The reply's write, only while this delivery holds the turn
        (``Fence.store_reply``)."""
        return await self.fence.store_reply(store, self.gen, reply, owner)

    async def check(self) -> None:
        """Superseded if another delivery has claimed the turn since."""
        if (await self.redis.hget(self.key, "gen") or "0") != self.gen:
            raise Superseded(self.key)

    async def _set(self, field_name: str, value: str, *, nx: bool = False) -> str:
        got = await self._write(
            keys=[self.key],
            args=[self.gen, "nx" if nx else "set", field_name, value, TOOL_STEPS_TTL_S],
        )
        if got == -1:
            raise Superseded(self.key)
        return str(got)

    async def load(self) -> Saved:
        got = await self.redis.hgetall(self.key)
        return self._parse({str(k): str(v) for k, v in got.items()})

    @staticmethod
    def _parse(raw: dict[str, str]) -> Saved:
        saved = Saved()
        index = 0
        while f"step:{index}" in raw:
            step = ToolStep.model_validate_json(raw[f"step:{index}"])
            for n, call in enumerate(step.calls):
                finished = raw.get(f"done:{index}:{call.id}")
                if finished is not None:
                    step.calls[n] = ToolCall.model_validate_json(finished)
                elif f"start:{index}:{call.id}" in raw:
                    saved.in_flight.add((index, call.id))
            saved.steps.append(step)
            index += 1
        return saved

    async def save_step(self, index: int, step: ToolStep) -> None:
        await self._set(f"step:{index}", step.model_dump_json())

    async def start_call(self, index: int, call_id: str) -> None:
        await self._set(f"start:{index}:{call_id}", "1", nx=True)

    async def finish_call(self, index: int, call: ToolCall) -> None:
        await self._set(f"done:{index}:{call.id}", call.model_dump_json())

    async def ask(self, call_id: str, now: float) -> float:
        """Mark a call as waiting for approval (``shared/tool_approvals.py``);
        the time it first waited (a takeover keeps the original deadline)."""
        return float(await self._set(waiting_field(call_id), str(now), nx=True))

    async def answer(self, call_id: str, user_id: str) -> bool | None:
        """The user's answer to an approval: True, False, or None (none yet)."""
        got = await self.redis.hget(self.key, answer_field(call_id, user_id))
        return None if got is None else got == "yes"

    async def clear(self) -> None:
        await self.redis.delete(self.key)
