"""The tool-step checkpoint's fencing on real Redis: a worker that was only
paused while another took its turn over can neither write nor start calls."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from shared.conversation import Message
from shared.redis_client import make_redis
from shared.store import AddResult, ConversationStore
from shared.tools import ToolCall, ToolStep
from tests.support.keys import KEYS
from worker.tools.checkpoint import Checkpoint, Superseded

STEP = ToolStep(calls=[ToolCall(id=c, server="s", tool="t", arguments="{}") for c in ("a", "b")])


async def test_a_takeover_fences_off_the_paused_worker(redis: Redis) -> None:
    old = Checkpoint(redis, KEYS, "turn1", "conv1")
    assert (await old.claim("u1")).steps == []
    await old.save_step(0, STEP)
    await old.start_call(0, "a")  # before the takeover: seen as in flight

    new = Checkpoint(redis, KEYS, "turn1", "conv1")
    saved = await new.claim("u1")
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
    again = await Checkpoint(redis, KEYS, "turn1", "conv1").load()
    assert [c.status for c in again.steps[0].calls] == [None, "ok"]
    assert 0 < await redis.ttl(KEYS.turn_steps("turn1")) <= 2 * 3600


async def test_the_reply_is_stored_only_by_the_delivery_holding_the_turn(
    cluster_redis_url: str,
) -> None:
    """On a (one-node) Redis Cluster: the fenced write is one slot's
    transaction; the delivery that lost the turn stores nothing."""
    redis = make_redis(cluster_redis_url)
    try:
        await redis.flushall()
        store = ConversationStore(redis, KEYS)
        conv = await store.create("u1", model="m")
        question = Message(id="q1", role="user", content="hi")
        assert (await store.add_message(conv.id, question, owner="u1")).status == 1
        old = Checkpoint(redis, KEYS, "turn1", conv.id)
        await old.claim("u1")
        await old.save_step(0, STEP)
        new = Checkpoint(redis, KEYS, "turn1", conv.id)
        await new.claim("u1")

        def reply(text: str) -> Message:
            return Message(id="turn1", parent_id="q1", role="assistant", content=text)

        with pytest.raises(Superseded):
            await old.store_reply(store, reply("stale"), "u1")
        assert "turn1" not in (await store.get_owned(conv.id, "u1")).messages
        added = AddResult.parse(await new.store_reply(store, reply("fresh"), "u1"))
        assert added.status == 1 and added.first_reply
        stored = (await store.get_owned(conv.id, "u1")).messages["turn1"]
        assert stored.content == "fresh"
    finally:
        await redis.aclose()
