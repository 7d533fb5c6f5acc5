"""The worker against a real Redis: consumer group, stop, retries, takeover."""

from __future__ import annotations

import asyncio
import time

import pytest
from redis.asyncio import Redis

from shared.keys import WORKER_GROUP
from shared.models_file import ScriptedModel
from shared.store import ConversationStore
from shared.streams import DeadLetter
from tests.worker.helpers import (
    KEYS,
    queue_turn,
    running_worker,
    session_events,
    settings,
    wait_event,
)

FAST = ScriptedModel(id="fast", backend="scripted", reply_tokens=64)
SLOW = ScriptedModel(id="slow", backend="scripted", reply_tokens=400, tokens_per_second=40)


async def stored(redis: Redis, cid: str, user: str = "u1"):  # type: ignore[no-untyped-def]
    return await ConversationStore(redis, KEYS).get_owned(cid, user)


async def test_a_turn_is_streamed_stored_and_acknowledged(redis: Redis, redis_url: str) -> None:
    async with running_worker(redis, settings(redis_url), [FAST]):
        turn = await queue_turn(redis, FAST, "Tell me about tides")
        end = await wait_event(redis, turn.session_id, "stream_end", turn_id=turn.turn_id)
    events = await session_events(redis, turn.session_id)
    types = [e["type"] for e in events]
    assert types[0] == "stream_start"
    assert types[-2:] == ["stream_end", "title"]
    chunks = [e["chunk"] for e in events if e["type"] == "stream_chunk"]
    # 64 tokens at once: no chunk repeats what stream_end carries whole.
    assert chunks == []
    content = end["message"]["content"]
    assert content.startswith("You said: Tell me about tides")
    assert len(content.split()) == 64
    assert content.startswith("".join(chunks))
    conv = await stored(redis, turn.conversation_id)
    reply = conv.messages[turn.turn_id]
    assert (reply.content, reply.finish_reason, reply.parent_id) == (
        content,
        "stop",
        turn.parent_id,
    )
    assert reply.usage is not None and reply.usage.completion_tokens == 64
    assert conv.current_id == turn.turn_id
    assert conv.title == "Tell me about tides"
    pending = await redis.xpending(KEYS.prompts("default"), WORKER_GROUP)
    assert pending["pending"] == 0


async def test_stop_ends_the_reply_within_half_a_second(redis: Redis, redis_url: str) -> None:
    async with running_worker(redis, settings(redis_url), [SLOW]):
        turn = await queue_turn(redis, SLOW)
        await wait_event(redis, turn.session_id, "stream_chunk", turn_id=turn.turn_id)
        await asyncio.sleep(0.3)  # let some text stream: the test is about a stop mid-reply
        asked = time.monotonic()
        await redis.set(KEYS.cancel(turn.turn_id), "u1", ex=60)
        await redis.publish(KEYS.cancel_channel(), f"{turn.turn_id} u1")
        end = await wait_event(redis, turn.session_id, "stream_end", turn_id=turn.turn_id)
        took = time.monotonic() - asked
    assert took < 0.5
    msg = end["message"]
    assert msg["finish_reason"] == "stopped"
    words = msg["content"].split()
    assert 2 < len(words) < 100
    conv = await stored(redis, turn.conversation_id)
    assert conv.messages[turn.turn_id].content == msg["content"]


async def test_a_stop_from_another_user_is_ignored(redis: Redis, redis_url: str) -> None:
    spec = ScriptedModel(id="s", backend="scripted", reply_tokens=20, tokens_per_second=100)
    async with running_worker(redis, settings(redis_url), [spec]):
        turn = await queue_turn(redis, spec)
        await wait_event(redis, turn.session_id, "stream_chunk", turn_id=turn.turn_id)
        await redis.publish(KEYS.cancel_channel(), f"{turn.turn_id} mallory")
        end = await wait_event(redis, turn.session_id, "stream_end", turn_id=turn.turn_id)
    assert end["message"]["finish_reason"] == "stop"


async def test_a_turn_stopped_before_it_started_does_not_generate(
    redis: Redis, redis_url: str
) -> None:
    turn = await queue_turn(redis, SLOW)
    await redis.set(KEYS.cancel(turn.turn_id), "u1", ex=60)
    async with running_worker(redis, settings(redis_url), [SLOW]):
        end = await wait_event(redis, turn.session_id, "stream_end", turn_id=turn.turn_id)
    assert end["message"]["finish_reason"] == "stopped"
    assert end["message"]["content"] == ""


async def test_unavailable_backend_is_retried_then_dead_lettered(
    redis: Redis, redis_url: str
) -> None:
    spec = ScriptedModel(id="flaky", backend="scripted", fail_on="POISON", fail_status=503)
    async with running_worker(
        redis, settings(redis_url, backend_retries=2), [spec, FAST]
    ) as worker:
        bad = await queue_turn(redis, spec, "POISON please", session="sessionB1")
        good = await queue_turn(redis, spec, "a fine question", session="sessionB2")
        error = await wait_event(redis, bad.session_id, "error", turn_id=bad.turn_id)
        end = await wait_event(redis, bad.session_id, "stream_end", turn_id=bad.turn_id)
        ok = await wait_event(redis, good.session_id, "stream_end", turn_id=good.turn_id)
        assert worker.started_turns == 2
    assert error["code"] == "backend_unavailable"
    assert end["message"]["finish_reason"] == "error"
    assert end["message"]["error"]["code"] == "backend_unavailable"
    assert ok["message"]["finish_reason"] == "stop"
    dead = await redis.xrange(KEYS.dead("default"))
    assert len(dead) == 1 and bad.turn_id in dead[0][1]["d"]
    conv = await stored(redis, bad.conversation_id)
    assert conv.messages[bad.parent_id].content == "POISON please"  # what the user typed is kept


async def test_a_refused_request_is_not_retried(redis: Redis, redis_url: str) -> None:
    spec = ScriptedModel(id="strict", backend="scripted", fail_on="BAD", fail_status=400)
    async with running_worker(redis, settings(redis_url), [spec]):
        turn = await queue_turn(redis, spec, "BAD input")
        error = await wait_event(redis, turn.session_id, "error", turn_id=turn.turn_id)
    assert error["code"] == "backend_error"
    assert await redis.xlen(KEYS.dead("default")) == 0
    assert (await redis.xpending(KEYS.prompts("default"), WORKER_GROUP))["pending"] == 0


async def test_a_turn_abandoned_by_a_dead_worker_is_taken_over(
    redis: Redis, redis_url: str
) -> None:
    turn = await queue_turn(redis, FAST, "who takes over?")
    # A worker that read the turn and died: the entry stays pending to it.
    await redis.xgroup_create(KEYS.prompts("default"), WORKER_GROUP, id="0", mkstream=True)
    got = await redis.xreadgroup(WORKER_GROUP, "ghost", {KEYS.prompts("default"): ">"}, count=1)
    assert got
    cfg = settings(redis_url, claim_idle_seconds=0.3, claim_interval_seconds=0.1)
    async with running_worker(redis, cfg, [FAST]) as worker:
        restart = await wait_event(redis, turn.session_id, "stream_restart", turn_id=turn.turn_id)
        end = await wait_event(redis, turn.session_id, "stream_end", turn_id=turn.turn_id)
        assert worker.takeovers == 1
    assert "starting again" in restart["reason"]
    conv = await stored(redis, turn.conversation_id)
    replies = [m for m in conv.messages.values() if m.role == "assistant"]
    assert [r.id for r in replies] == [turn.turn_id]
    assert replies[0].content == end["message"]["content"]
    assert int(await redis.hget(KEYS.metrics("default"), "takeovers") or 0) == 1


async def test_a_turn_whose_workers_keep_dying_is_dead_lettered(
    redis: Redis, redis_url: str
) -> None:
    turn = await queue_turn(redis, FAST, "poison")
    await redis.xgroup_create(KEYS.prompts("default"), WORKER_GROUP, id="0", mkstream=True)
    await redis.xreadgroup(WORKER_GROUP, "ghost", {KEYS.prompts("default"): ">"}, count=1)
    entry_id = (await redis.xrange(KEYS.prompts("default")))[0][0]
    for _ in range(3):  # three more deliveries to workers that died
        await redis.xclaim(KEYS.prompts("default"), WORKER_GROUP, "ghost", 0, [entry_id])
    cfg = settings(redis_url, claim_idle_seconds=0.2, claim_interval_seconds=0.1, max_deliveries=3)
    async with running_worker(redis, cfg, [FAST]):
        error = await wait_event(redis, turn.session_id, "error", turn_id=turn.turn_id)
    assert error["code"] == "internal"
    assert await redis.xlen(KEYS.dead("default")) == 1
    conv = await stored(redis, turn.conversation_id)
    assert conv.messages[turn.turn_id].finish_reason == "error"


async def test_a_reply_already_stored_is_not_generated_twice(redis: Redis, redis_url: str) -> None:
    async with running_worker(redis, settings(redis_url), [FAST]):
        turn = await queue_turn(redis, FAST, "once")
        first = await wait_event(redis, turn.session_id, "stream_end", turn_id=turn.turn_id)
    # The same turn delivered again (its worker died after storing, before XACK).
    await redis.xadd(KEYS.prompts("default"), {"d": turn.model_dump_json()})
    await redis.delete(KEYS.session(turn.session_id))
    await redis.xadd(KEYS.session(turn.session_id), {"t": "init", "d": "{}"})
    async with running_worker(redis, settings(redis_url), [FAST]):
        again = await wait_event(redis, turn.session_id, "stream_end", turn_id=turn.turn_id)
    # the stored message, as RedisJSON gives it back (floats may differ in the last digit)
    assert {k: v for k, v in again["message"].items() if k != "created_at"} == {
        k: v for k, v in first["message"].items() if k != "created_at"
    }
    assert again["message"]["created_at"] == pytest.approx(first["message"]["created_at"])
    events = await session_events(redis, turn.session_id)
    # no chunk: nothing was generated; the stored reply is sent again
    assert [e["type"] for e in events] == ["stream_start", "stream_end"]


async def test_concurrency_limits_turns_in_flight(redis: Redis, redis_url: str) -> None:
    spec = ScriptedModel(id="s", backend="scripted", reply_tokens=10, tokens_per_second=50)
    async with running_worker(redis, settings(redis_url, concurrency=2), [spec]) as worker:
        turns = [
            await queue_turn(redis, spec, f"q{i}", session=f"session{i:04d}") for i in range(5)
        ]
        peak = 0
        async with asyncio.timeout(20):
            while (
                not all([await redis.xlen(KEYS.session(t.session_id)) > 1 for t in turns])
                or worker._running
            ):
                peak = max(peak, len(worker._running))
                await asyncio.sleep(0.01)
        for t in turns:
            await wait_event(redis, t.session_id, "stream_end", turn_id=t.turn_id)
    assert peak == 2


async def test_shutdown_hands_unfinished_turns_back(redis: Redis, redis_url: str) -> None:
    cfg = settings(redis_url, drain_timeout_seconds=0.2)
    async with running_worker(redis, cfg, [SLOW]) as first:
        turn = await queue_turn(redis, SLOW)
        await wait_event(redis, turn.session_id, "stream_chunk", turn_id=turn.turn_id)
        first.request_stop()
    # Far below the 10 s idle threshold: the handed-back entry is claimable at once.
    cfg2 = settings(redis_url, claim_interval_seconds=0.1, drain_timeout_seconds=0.1)
    started = time.monotonic()
    async with running_worker(redis, cfg2, [SLOW]):
        await wait_event(redis, turn.session_id, "stream_restart", turn_id=turn.turn_id)
        took = time.monotonic() - started
    assert took < 3


async def test_a_stop_for_a_queued_turn_is_remembered_without_a_redis_read(
    redis: Redis, redis_url: str
) -> None:
    busy = ScriptedModel(id="busy", backend="scripted", reply_tokens=30, tokens_per_second=60)
    async with running_worker(redis, settings(redis_url, concurrency=1), [busy]):
        first = await queue_turn(redis, busy, "occupy the only slot", session="sessionF1")
        await wait_event(redis, first.session_id, "stream_chunk", turn_id=first.turn_id)
        queued = await queue_turn(redis, busy, "never mind", session="sessionF2")
        # only the pub/sub announcement, no key: the worker must remember it
        await redis.publish(KEYS.cancel_channel(), f"{queued.turn_id} u1")
        end = await wait_event(redis, queued.session_id, "stream_end", turn_id=queued.turn_id)
    assert end["message"]["finish_reason"] == "stopped"
    assert end["message"]["content"] == ""


async def test_an_entry_that_is_not_a_turn_becomes_a_dead_letter_without_one(
    redis: Redis, redis_url: str
) -> None:
    """A prompt-stream entry that does not parse is acknowledged and kept on the
    dead-letter stream in the one letter shape (no turn, its raw fields), and
    the turns behind it are served."""
    stream = KEYS.prompts("default")
    await redis.xgroup_create(stream, WORKER_GROUP, id="0", mkstream=True)
    bad = await redis.xadd(stream, {"d": '{"turn_id": 5}'})
    async with running_worker(redis, settings(redis_url), [FAST]):
        turn = await queue_turn(redis, FAST, "still served")
        await wait_event(redis, turn.session_id, "stream_end", turn_id=turn.turn_id)
    [(_, fields)] = await redis.xrange(KEYS.dead("default"))
    letter = DeadLetter.model_validate_json(fields["d"])
    assert letter.turn is None and letter.entry_id == bad
    assert letter.raw is not None and '"turn_id": 5' in letter.raw
    assert letter.error.startswith("not a turn")
    assert (await redis.xpending(stream, WORKER_GROUP))["pending"] == 0
