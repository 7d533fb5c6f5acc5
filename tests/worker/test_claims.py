"""The claim loop never takes over a turn its own worker is running: a
heartbeat a little late (it refreshes every HEARTBEAT_S, and a deployment
or a test may set the claim threshold near that) must not start the same
turn a second time in the same process. That second run fenced the first
off, and when the first ended its bookkeeping dropped the second's entry, so
the heartbeat stopped refreshing it and the next claim started a third:
a tool turn whose idempotent call outlasted the threshold was restarted
over and over and never ended (the in-flight chaos test's timeout)."""

from __future__ import annotations

import asyncio
import time

from redis.asyncio import Redis

from shared.keys import WORKER_GROUP
from tests.worker.helpers import KEYS, settings
from worker.claims import Claims
from worker.lanes import Lanes
from worker.running import Running, RunningTurns

PROMPTS = KEYS.prompts("default")
IDLE = 0.05


async def test_a_turn_the_worker_runs_is_not_taken_over_by_itself(
    redis: Redis, redis_url: str
) -> None:
    await redis.xgroup_create(PROMPTS, WORKER_GROUP, id="0", mkstream=True)
    entry = await redis.xadd(PROMPTS, {"d": "a turn"})
    await redis.xreadgroup(WORKER_GROUP, "w1", {PROMPTS: ">"})
    running = RunningTurns(4)
    started: list[str] = []
    cfg = settings(redis_url, claim_idle_seconds=IDLE)
    claims = Claims(
        redis,
        KEYS,
        cfg,
        "w1",
        ["default"],
        running,
        lambda e: started.append(e.entry_id),
        Lanes.turns(KEYS),
    )
    task = asyncio.create_task(asyncio.Event().wait())
    running.add(entry, Running("default", task))
    deadline = time.monotonic() + 10 * IDLE
    while time.monotonic() < deadline:  # past the threshold, the heartbeat late
        await claims.claim_all()
        await asyncio.sleep(IDLE)
    assert started == []

    # A run of its own that ended without acknowledging (it failed) is retried.
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await asyncio.sleep(IDLE)
    await claims.claim_all()
    assert started == [entry]
