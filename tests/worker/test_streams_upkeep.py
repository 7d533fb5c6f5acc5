"""Keeping the prompt streams healthy against a real Redis: trimming without
losing a pending turn, takeovers not starved by a long queue, a consumer
group that went missing."""

from __future__ import annotations

import asyncio
import time

from redis.asyncio import Redis

from shared.keys import HEARTBEAT_S, WORKER_GROUP
from shared.models_file import ScriptedModel
from tests.worker.helpers import KEYS, queue_turn, running_worker, settings, wait_event
from worker import upkeep

FAST = ScriptedModel(id="fast", backend="scripted", reply_tokens=8)
PROMPTS = KEYS.prompts("default")


async def read_as(redis: Redis, consumer: str, count: int) -> list[str]:
    got = await redis.xreadgroup(WORKER_GROUP, consumer, {PROMPTS: ">"}, count=count)
    return [entry_id for _, entries in got for entry_id, _ in entries]


async def test_trim_drops_acknowledged_turns_and_keeps_pending_and_undelivered(
    redis: Redis, redis_url: str
) -> None:
    await redis.xgroup_create(PROMPTS, WORKER_GROUP, id="0", mkstream=True)
    for i in range(300):
        await redis.xadd(PROMPTS, {"d": f"turn {i}"})
    done = await read_as(redis, "w1", 250)
    await redis.xack(PROMPTS, WORKER_GROUP, *done)
    stuck = await read_as(redis, "ghost", 1)  # its worker died: pending, never acked
    later = await read_as(redis, "w1", 19)
    await redis.xack(PROMPTS, WORKER_GROUP, *later)
    # 30 never delivered

    trimmed = await upkeep.trim(redis, KEYS, "default")

    assert trimmed >= 200  # approximate (whole radix-tree nodes): at most ~100 short
    assert await redis.xlen(PROMPTS) == 300 - trimmed
    first = (await redis.xrange(PROMPTS, count=1))[0][0]
    assert first <= stuck[0]
    # the pending entry can still be taken over, with its fields
    _, claimed, *_ = await redis.xautoclaim(PROMPTS, WORKER_GROUP, "rescuer", 0, "0-0")
    assert claimed == [(stuck[0], {"d": "turn 250"})]
    # the undelivered ones are all still there, and still counted as waiting
    fresh = await read_as(redis, "w1", 100)
    assert len(fresh) == 30
    # nothing to trim twice; a stream without a group is left alone
    assert await upkeep.trim(redis, KEYS, "default") == 0
    await redis.delete(PROMPTS)
    await redis.xadd(PROMPTS, {"d": "queued before any worker"})
    assert await upkeep.trim(redis, KEYS, "default") == 0
    assert await redis.xlen(PROMPTS) == 1


async def test_a_running_worker_keeps_its_prompt_stream_short(redis: Redis, redis_url: str) -> None:
    cfg = settings(redis_url, concurrency=16, trim_interval_seconds=0.2)
    async with running_worker(redis, cfg, [FAST]):
        turns = [
            await queue_turn(redis, FAST, f"q{i}", session=f"session{i:04d}") for i in range(250)
        ]
        for turn in turns:
            await wait_event(redis, turn.session_id, "stream_end", turn_id=turn.turn_id)
        async with asyncio.timeout(10):
            while await redis.xlen(PROMPTS) >= 100:  # ~ trims whole nodes of 100 entries
                await asyncio.sleep(0.1)
    assert (await redis.xpending(PROMPTS, WORKER_GROUP))["pending"] == 0


async def test_an_abandoned_turn_goes_before_new_ones_when_every_slot_is_busy(
    redis: Redis, redis_url: str
) -> None:
    steady = ScriptedModel(id="steady", backend="scripted", reply_tokens=6, tokens_per_second=30)
    orphan = await queue_turn(redis, steady, "left behind", session="sessionO1")
    await redis.xgroup_create(PROMPTS, WORKER_GROUP, id="0", mkstream=True)
    [entry] = await read_as(redis, "ghost", 1)  # a worker took it and died, long ago
    await redis.xclaim(PROMPTS, WORKER_GROUP, "ghost", 0, [entry], idle=60_000, justid=True)
    queued = [
        await queue_turn(redis, steady, f"new {i}", session=f"sessionN{i:03d}") for i in range(12)
    ]
    cfg = settings(redis_url, concurrency=1, claim_idle_seconds=0.3, claim_interval_seconds=0.1)
    async with running_worker(redis, cfg, [steady]) as worker:
        restart = await wait_event(
            redis, orphan.session_id, "stream_restart", turn_id=orphan.turn_id
        )
        starts = [
            await wait_event(redis, t.session_id, "stream_start", turn_id=t.turn_id, timeout=30)
            for t in queued
        ]
        assert worker.takeovers == 1
    # the one slot never stood free while new turns waited, yet the abandoned
    # turn was taken over long before the queue drained
    before = sum(s["event_id"] < restart["event_id"] for s in starts)
    assert before <= 2, f"{before} new turns went first"


async def test_a_lost_consumer_group_is_recreated_and_the_heartbeat_carries_on(
    redis: Redis, redis_url: str
) -> None:
    slow = ScriptedModel(id="slow", backend="scripted", reply_tokens=60, tokens_per_second=20)
    async with running_worker(redis, settings(redis_url), [slow, FAST]) as worker:
        turn = await queue_turn(redis, slow, "long one", session="sessionG1")
        await wait_event(redis, turn.session_id, "stream_chunk", turn_id=turn.turn_id)
        # The stream and its group vanish (an operator's DEL, a Redis that
        # came back empty) while the turn runs.
        await redis.delete(PROMPTS)
        seen = time.time() * 1000
        async with asyncio.timeout(4 * HEARTBEAT_S):
            while (await redis.zscore(KEYS.workers("default"), worker.consumer) or 0) <= seen:
                await asyncio.sleep(0.1)
        await wait_event(redis, turn.session_id, "stream_end", turn_id=turn.turn_id)
        # New turns are queued into a stream without the group: served anyway.
        again = await queue_turn(redis, FAST, "still there?", session="sessionG2")
        end = await wait_event(redis, again.session_id, "stream_end", turn_id=again.turn_id)
    assert end["message"]["finish_reason"] == "stop"
    groups = await redis.xinfo_groups(PROMPTS)
    assert [g["name"] for g in groups] == [WORKER_GROUP]


async def test_turns_on_their_last_tries_are_taken_one_at_a_time(
    redis: Redis, redis_url: str
) -> None:
    """A turn near the delivery limit may be one that kills its workers: a
    worker runs at most one such turn at once, so the turns that died beside
    it are not dead-lettered with it."""
    steady = ScriptedModel(id="steady", backend="scripted", reply_tokens=8, tokens_per_second=20)
    twice = [
        await queue_turn(redis, steady, f"twice {i}", session=f"sessionT{i}") for i in range(2)
    ]
    once = await queue_turn(redis, steady, "once", session="sessionT9")
    await redis.xgroup_create(PROMPTS, WORKER_GROUP, id="0", mkstream=True)
    ids = await read_as(redis, "ghost", 3)
    # the first two were delivered twice already (their workers died twice)
    await redis.xclaim(PROMPTS, WORKER_GROUP, "ghost", 0, ids[:2])
    await redis.xclaim(PROMPTS, WORKER_GROUP, "ghost", 0, ids, idle=60_000, justid=True)
    cfg = settings(
        redis_url,
        concurrency=4,
        claim_idle_seconds=0.3,
        claim_interval_seconds=0.1,
        max_deliveries=4,  # the 3rd and 4th deliveries are the last tries
    )
    async with running_worker(redis, cfg, [steady]) as worker:
        ends = [
            await wait_event(redis, t.session_id, "stream_end", turn_id=t.turn_id)
            for t in [*twice, once]
        ]
        starts = [
            await wait_event(redis, t.session_id, "stream_start", turn_id=t.turn_id)
            for t in [*twice, once]
        ]
        assert worker.takeovers == 3
    # the first-time orphan went with the first suspect; the second suspect
    # only once the first had finished
    assert starts[2]["event_id"] < ends[0]["event_id"]
    assert starts[1]["event_id"] > ends[0]["event_id"]
    assert [e["message"]["finish_reason"] for e in ends] == ["stop"] * 3
