"""The check that refuses a message whose conversation moved on, against the
real server: the store's ``ADD`` script compares the conversation's current
leaf with the one the writer expects before it writes anything (message,
link, frame marker). Atomic with the append: of two tabs that saw the same
newest message, exactly one gets its message in."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from shared.conversation import Message
from shared.store import AddResult, ConflictError, ConversationStore
from tests.support.keys import KEYS


async def conversation(store: ConversationStore) -> str:
    conv = await store.create("alice")
    await store.add_message(conv.id, Message(id="q1", role="user", content="hi"), owner="alice")
    return conv.id


async def append(
    store: ConversationStore, cid: str, expected: str, mid: str, marker: str | None = None
) -> AddResult:
    pipe = store.redis.pipeline(transaction=False)
    message = Message(id=mid, parent_id=expected, role="user", content=mid)
    store.queue_add_message(
        pipe, cid, message, owner="alice", expect_current=expected, marker=marker, marker_ttl=60
    )
    return AddResult.parse((await pipe.execute())[0])


async def test_a_message_onto_the_newest_goes_in_and_a_stale_one_stores_nothing(
    redis: Redis,
) -> None:
    store = ConversationStore(redis, KEYS)
    cid = await conversation(store)
    assert (await append(store, cid, "q1", "m1")).status == 1
    conv = await store.get(cid)
    assert conv is not None and conv.current_id == "m1"

    guard = KEYS.client_frame(cid, "s1", "c1")
    stale = await append(store, cid, "q1", "m2", marker=guard)
    assert (stale.status, stale.current_id) == (-3, "m1")
    conflict = ConflictError.from_reply(ConflictError(stale.current_id))
    assert conflict is not None and conflict.current_id == "m1"
    conv = await store.get(cid)
    assert conv is not None and "m2" not in conv.messages
    assert conv.messages["q1"].children == ["m1"]
    # The frame's client_id is not taken: sent again onto "m1", it is not a duplicate.
    assert not await redis.exists(guard)


async def test_two_tabs_that_saw_the_same_message_one_gets_in(redis: Redis) -> None:
    store = ConversationStore(redis, KEYS)
    cid = await conversation(store)
    results = await asyncio.gather(*(append(store, cid, "q1", f"tab{i}") for i in range(8)))
    assert sorted(r.status for r in results) == [-3] * 7 + [1]
    conv = await store.get(cid)
    assert conv is not None
    assert [m.id for m in conv.messages.values() if m.parent_id == "q1"] == [conv.current_id]


async def test_a_deleted_conversation_stores_nothing(redis: Redis) -> None:
    store = ConversationStore(redis, KEYS)
    cid = await conversation(store)
    await store.delete(cid, "alice")
    assert (await append(store, cid, "q1", "m1")).status == -1  # not found
    assert not await redis.exists(KEYS.conversation(cid))
    assert not await redis.exists(KEYS.message(cid, "m1"))
