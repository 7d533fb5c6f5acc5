"""The tool-step checkpoint's fencing on real Redis: a worker that was only
paused while another took its turn over can neither write nor start calls."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from shared.tools import ToolCall, ToolStep
from tests.support.keys import KEYS
from worker.tools.checkpoint import Checkpoint, Superseded

STEP = ToolStep(calls=[ToolCall(id=c, server="s", tool="t", arguments="{}") for c in ("a", "b")])


async def test_a_takeover_fences_off_the_paused_worker(redis: Redis) -> None:
    old = Checkpoint(redis, KEYS, "turn1")
    assert (await old.claim()).steps == []
    await old.save_step(0, STEP)
    await old.start_call(0, "a")  # before the takeover: seen as in flight

    new = Checkpoint(redis, KEYS, "turn1")
    saved = await new.claim()
    assert [len(s.calls) for s in saved.steps] == [2]
    assert saved.in_flight == {(0, "a")}

    # The paused worker wakes up: every write of its is refused.
    with pytest.raises(Superseded):
        await old.start_call(0, "b")
    with pytest.raises(Superseded):
        await old.finish_call(0, STEP.calls[0].model_copy(update={"status": "ok"}))
    with pytest.raises(Superseded):
        await old.check()
    # The new holder goes on.
    await new.start_call(0, "b")
    await new.finish_call(0, STEP.calls[1].model_copy(update={"status": "ok", "result": "1"}))
    await new.check()
    again = await Checkpoint(redis, KEYS, "turn1").load()
    assert [c.status for c in again.steps[0].calls] == [None, "ok"]
    assert 0 < await redis.ttl(KEYS.turn_steps("turn1")) <= 2 * 3600
