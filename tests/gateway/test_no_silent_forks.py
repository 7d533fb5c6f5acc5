"""The check that refuses a message whose conversation moved on, against the
real server: the store's EXPECT_CURRENT as the first command of the writer's
one script (gateway/once.py). Atomic with the append: of two tabs that saw
the same newest message, exactly one gets its message in."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from gateway.once import Once
from shared import store as store_module
from shared.conversation import Message
from shared.keys import Keys
from shared.store import ConflictError, ConversationStore

KEYS = Keys("tc:")


async def conversation(store: ConversationStore) -> str:
    conv = await store.create("alice")
    pipe = store.redis.pipeline(transaction=False)
    store.queue_add_message(pipe, conv.id, Message(id="q1", role="user", content="hi"))
    await pipe.execute()
    return conv.id


def append(store: ConversationStore, cid: str, expected: str, mid: str) -> Pipeline:
    pipe = store.redis.pipeline(transaction=False)
    store.queue_expect_current(pipe, cid, expected)
    message = Message(id=mid, parent_id=expected, role="user", content=mid)
    store.queue_add_message(pipe, cid, message)
    pipe.incr("tc:test:writes-after-the-check")
    return pipe


async def test_a_message_onto_the_newest_goes_in_and_a_stale_one_stores_nothing(
    redis: Redis,
) -> None:
    store = ConversationStore(redis, KEYS)
    once = Once(redis, 60, inline=store_module.INLINE_SCRIPTS)
    cid = await conversation(store)
    errors = await once.execute(append(store, cid, "q1", "m1"), None, precondition=True)
    assert errors == [None, None, None]
    conv = await store.get(cid)
    assert conv is not None and conv.current_id == "m1"

    guard = "tc:test:guard"
    errors = await once.execute(append(store, cid, "q1", "m2"), guard, precondition=True)
    assert errors is not None and len(errors) == 1  # the check alone ran
    assert errors[0] is not None
    conflict = ConflictError.from_reply(errors[0])
    assert conflict is not None and conflict.current_id == "m1"
    conv = await store.get(cid)
    assert conv is not None and "m2" not in conv.messages
    assert await redis.get("tc:test:writes-after-the-check") == "1"
    # The frame's client_id is given back: sent again onto "m1", it is not a duplicate.
    assert not await redis.exists(guard)


async def test_two_tabs_that_saw_the_same_message_one_gets_in(redis: Redis) -> None:
    store = ConversationStore(redis, KEYS)
    once = Once(redis, 60, inline=store_module.INLINE_SCRIPTS)
    cid = await conversation(store)
    results = await asyncio.gather(
        *(
            once.execute(append(store, cid, "q1", f"tab{i}"), None, precondition=True)
            for i in range(8)
        )
    )
    accepted = [r for r in results if r is not None and all(e is None for e in r)]
    assert len(accepted) == 1
    conv = await store.get(cid)
    assert conv is not None
    assert [m.id for m in conv.messages.values() if m.parent_id == "q1"] == [conv.current_id]


async def test_a_deleted_conversation_is_a_conflict_too(redis: Redis) -> None:
    store = ConversationStore(redis, KEYS)
    once = Once(redis, 60, inline=store_module.INLINE_SCRIPTS)
    cid = await conversation(store)
    await store.delete(cid, "alice")
    errors = await once.execute(append(store, cid, "q1", "m1"), None, precondition=True)
    assert errors is not None and errors[0] is not None
    conflict = ConflictError.from_reply(errors[0])
    assert conflict is not None and conflict.current_id is None
    assert not await redis.exists(KEYS.conversation(cid))
