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

from redis.asyncio import Redis

from shared.keys import TOOL_STEPS_TTL_S, Keys
from shared.tool_approvals import answer_field, waiting_field
from shared.tools import ToolCall, ToolStep


@dataclass(slots=True)
class Saved:
    """What an earlier delivery of the turn recorded."""

    steps: list[ToolStep] = field(default_factory=list)
    #: (step, call id) of calls that were started and never finished.
    in_flight: set[tuple[int, str]] = field(default_factory=set)


class Checkpoint:
    def __init__(self, redis: Redis, keys: Keys, turn_id: str) -> None:
        self.redis = redis
        self.key = keys.turn_steps(turn_id)

    async def load(self) -> Saved:
        got = await self.redis.hgetall(self.key)
        raw = {str(k): str(v) for k, v in got.items()}
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
        pipe = self.redis.pipeline(transaction=True)  # one key: one slot
        pipe.hset(self.key, f"step:{index}", step.model_dump_json())
        pipe.expire(self.key, TOOL_STEPS_TTL_S)
        await pipe.execute()

    async def start_call(self, index: int, call_id: str) -> None:
        await self.redis.hsetnx(self.key, f"start:{index}:{call_id}", "1")

    async def finish_call(self, index: int, call: ToolCall) -> None:
        await self.redis.hset(self.key, f"done:{index}:{call.id}", call.model_dump_json())

    async def ask(self, call_id: str, now: float) -> float:
        """Mark a call as waiting for approval (``shared/tool_approvals.py``);
        the time it first waited (a takeover keeps the original deadline)."""
        field_name = waiting_field(call_id)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hsetnx(self.key, field_name, str(now))
        pipe.hget(self.key, field_name)
        _, first = await pipe.execute()
        return float(first)

    async def answer(self, call_id: str, user_id: str) -> bool | None:
        """The user's answer to an approval: True, False, or None (none yet)."""
        got = await self.redis.hget(self.key, answer_field(call_id, user_id))
        return None if got is None else got == "yes"

    async def clear(self) -> None:
        await self.redis.delete(self.key)
