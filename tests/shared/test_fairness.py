"""The fair-line scripts against a real Redis: each user holds at most their
share of a pool's stream, the rest wait in their own line and move on in
order as their turns finish; a stop lifts a waiting turn out; drifts are
repaired; and a frame's exactly-once script runs the admission inline."""

from __future__ import annotations

from redis.asyncio import Redis

from shared.conversation import new_id
from shared.fairness import FairLines
from shared.keys import WORKER_GROUP
from shared.streams import TurnRequest, decode_turn
from tests.support.keys import KEYS

POOL = "default"
STREAM = KEYS.prompts(POOL)
SHARE = 2


def turn(user: str, label: str) -> TurnRequest:
    return TurnRequest(
        turn_id=new_id(),
        session_id="session1",
        user_id=user,
        conversation_id="c1",
        parent_id=label,
        model="m",
    )


async def admit(redis: Redis, fair: FairLines, *turns: TurnRequest) -> None:
    pipe = redis.pipeline(transaction=False)
    for t in turns:
        fair.queue_admit(pipe, POOL, t, SHARE)
    await pipe.execute()


async def on_stream(redis: Redis) -> list[tuple[str, str]]:
    """(entry id, parent_id label) of every entry on the stream, in order."""
    rows = await redis.xrange(STREAM)
    return [(eid, decode_turn(fields).parent_id) for eid, fields in rows]


async def finish(redis: Redis, fair: FairLines, entry_id: str, user: str) -> None:
    pipe = redis.pipeline(transaction=False)
    fair.queue_release(pipe, POOL, entry_id, user, SHARE)
    await pipe.execute()


async def test_a_user_holds_at_most_their_share_and_the_pool_goes_round_robin(
    redis: Redis,
) -> None:
    fair = FairLines(redis, KEYS)
    await redis.xgroup_create(STREAM, WORKER_GROUP, id="0", mkstream=True)
    await admit(redis, fair, *(turn("alice", f"a{i}") for i in range(5)))
    await admit(redis, fair, turn("bob", "b0"))
    stream = await on_stream(redis)
    assert [label for _, label in stream] == ["a0", "a1", "b0"]
    assert await redis.lrange(KEYS.line(POOL, "alice"), 0, -1) != []
    assert (await fair.stats(POOL)).waiting == 3
    assert await redis.hget(KEYS.fair_counts(POOL), "alice") == "2"

    # A worker takes a0 and finishes it: alice's next turn joins the back.
    await redis.xreadgroup(WORKER_GROUP, "w", {STREAM: ">"}, count=3)
    await finish(redis, fair, stream[0][0], "alice")
    assert [label for _, label in await on_stream(redis)] == ["a0", "a1", "b0", "a2"]
    assert await redis.hget(KEYS.fair_counts(POOL), "alice") == "2"
    pending = await redis.xpending(STREAM, WORKER_GROUP)
    assert pending["pending"] == 2  # a0 acknowledged

    # Finishing twice (a takeover racing a frozen worker) hands on one slot.
    await finish(redis, fair, stream[0][0], "alice")
    assert len(await on_stream(redis)) == 4
    # bob's only turn finishes: his slot is simply given back.
    await finish(redis, fair, stream[2][0], "bob")
    assert await redis.hget(KEYS.fair_counts(POOL), "bob") is None
    # A turn queued outside the lines (dead retry, replay) releases nothing.
    outside = await redis.xadd(STREAM, {"d": turn("alice", "x").model_dump_json()})
    await finish(redis, fair, outside, "alice")
    assert len(await on_stream(redis)) == 5
    assert (await fair.stats(POOL)).waiting == 2


async def test_a_stopped_waiting_turn_is_lifted_onto_the_stream_without_a_slot(
    redis: Redis,
) -> None:
    fair = FairLines(redis, KEYS)
    turns = [turn("alice", f"a{i}") for i in range(4)]
    await admit(redis, fair, *turns)
    # Only alice can lift her turn, from her own line.
    assert not await fair.lift([POOL, "other"], "mallory", turns[3].turn_id)
    assert await fair.lift([POOL, "other"], "alice", turns[3].turn_id)
    assert [label for _, label in await on_stream(redis)] == ["a0", "a1", "a3"]
    assert await redis.hget(KEYS.fair_counts(POOL), "alice") == "2"
    assert await redis.lrange(KEYS.line(POOL, "alice"), 0, -1) == [turns[2].turn_id]
    lifted = (await on_stream(redis))[2][0]
    assert await redis.hget(KEYS.fair_held(POOL), lifted) is None
    # Lifting twice does nothing; a turn on the stream is not in any line.
    assert not await fair.lift([POOL], "alice", turns[3].turn_id)
    assert not await fair.lift([POOL], "alice", turns[0].turn_id)


async def test_repair_gives_back_lost_slots_and_moves_a_stalled_line_on(redis: Redis) -> None:
    fair = FairLines(redis, KEYS)
    await redis.xgroup_create(STREAM, WORKER_GROUP, id="0", mkstream=True)
    await admit(redis, fair, *(turn("alice", f"a{i}") for i in range(3)))
    first, second = [eid for eid, _ in await on_stream(redis)]
    await redis.xreadgroup(WORKER_GROUP, "w", {STREAM: ">"}, count=1)  # first: pending
    # Both slots are lost outside a finish: the delivered entry acknowledged
    # by hand, the undelivered one deleted.
    await redis.xack(STREAM, WORKER_GROUP, first)
    await redis.xdel(STREAM, second)
    # A slot of a live turn is kept: bob's, pending and undelivered.
    await admit(redis, fair, turn("bob", "b0"), turn("bob", "b1"))
    assert await fair.repair(POOL, SHARE) == (2, 1)
    assert [label for _, label in await on_stream(redis)] == ["a0", "b0", "b1", "a2"]
    assert await redis.hget(KEYS.fair_counts(POOL), "alice") == "1"
    assert await redis.hget(KEYS.fair_counts(POOL), "bob") == "2"
    assert (await fair.stats(POOL)).waiting_users == 0
    assert await fair.repair(POOL, SHARE) == (0, 0)
