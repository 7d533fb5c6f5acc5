"""The conversation store, against fakeredis and the real server alike."""

from __future__ import annotations

from collections.abc import AsyncIterator

import fakeredis
import pytest
from redis.asyncio import Redis

from shared.conversation import Message
from shared.keys import Keys
from shared.redis_client import make_redis
from shared.store import ConversationStore, NotFoundError, title_from_text


@pytest.fixture(params=["fakeredis", "redis-server"])
async def store(request: pytest.FixtureRequest, keys: Keys) -> AsyncIterator[ConversationStore]:
    client: Redis
    if request.param == "fakeredis":
        client = fakeredis.FakeAsyncRedis(decode_responses=True)
    else:
        client = make_redis(request.getfixturevalue("redis_url"))
        await client.flushall()
    try:
        yield ConversationStore(client, keys)
    finally:
        await client.aclose()


async def add(store: ConversationStore, cid: str, msg: Message, owner: str | None = None) -> None:
    pipe = store.redis.pipeline(transaction=False)
    store.queue_add_message(pipe, cid, msg, owner=owner)
    await pipe.execute()


async def test_a_tree_keeps_every_version_and_derives_children(store: ConversationStore) -> None:
    conv = await store.create("alice", title="Trip", system_prompt="be brief", model="m")
    await add(store, conv.id, Message(id="u1", role="user", content="hi", created_at=1), "alice")
    await add(
        store,
        conv.id,
        Message(id="a1", parent_id="u1", role="assistant", content="one", created_at=2),
    )
    await add(
        store,
        conv.id,
        Message(id="a2", parent_id="u1", role="assistant", content="two", created_at=3),
    )
    await add(
        store, conv.id, Message(id="u2", parent_id="a1", role="user", content="more", created_at=4)
    )

    got = await store.get_owned(conv.id, "alice")
    assert got.messages["u1"].children == ["a1", "a2"]
    assert got.messages["a1"].children == ["u2"]
    assert got.current_id == "u2"
    assert [m.id for m in got.branch()] == ["u1", "a1", "u2"]
    assert [m.id for m in got.branch("a2")] == ["u1", "a2"]
    assert got.system_prompt == "be brief"


async def test_storing_the_same_message_twice_adds_it_once(store: ConversationStore) -> None:
    conv = await store.create("alice")
    msg = Message(id="u1", role="user", content="hi")
    await add(store, conv.id, msg)
    await add(store, conv.id, msg)
    got = await store.get_owned(conv.id, "alice")
    assert list(got.messages) == ["u1"]


async def test_another_users_conversation_is_not_found(store: ConversationStore) -> None:
    conv = await store.create("alice")
    with pytest.raises(NotFoundError):
        await store.get_owned(conv.id, "mallory")
    with pytest.raises(NotFoundError):
        await store.owned_head(conv.id, "mallory")
    with pytest.raises(NotFoundError):
        await store.get_owned("missing", "alice")


async def test_head_reads_what_a_turn_needs(store: ConversationStore) -> None:
    conv = await store.create("alice", model="m")
    await add(store, conv.id, Message(id="u1", role="user", content="hi"))
    head = await store.owned_head(conv.id, "alice", "u1")
    assert (head.current_id, head.model, head.message_role, head.message_exists) == (
        "u1",
        "m",
        "user",
        True,
    )
    head = await store.owned_head(conv.id, "alice", "nope")
    assert head.message_exists is False


async def test_list_pages_newest_first_and_searches_text(store: ConversationStore) -> None:
    ids = []
    for i in range(7):
        conv = await store.create("alice", title=f"chat {i}")
        await add(
            store,
            conv.id,
            Message(id=f"u{i}", role="user", content=f"about topic{i % 2}", created_at=100 + i),
            "alice",
        )
        ids.append(conv.id)
    await store.create("bob", title="chat of bob")

    page1, cursor = await store.list_for_user("alice", limit=3)
    assert [c.id for c in page1] == ids[::-1][:3]
    page2, cursor2 = await store.list_for_user("alice", limit=3, cursor=cursor)
    assert [c.id for c in page2] == ids[::-1][3:6]
    page3, cursor3 = await store.list_for_user("alice", limit=3, cursor=cursor2)
    assert [c.id for c in page3] == ids[:1]
    assert cursor3 is None

    found, _ = await store.list_for_user("alice", q="TOPIC1")
    assert {c.id for c in found} == {ids[1], ids[3], ids[5]}
    by_title, _ = await store.list_for_user("alice", q="chat 4")
    assert [c.id for c in by_title] == [ids[4]]


async def test_update_and_delete(store: ConversationStore) -> None:
    conv = await store.create("alice")
    await store.update(conv.id, "alice", {"title": "Renamed", "system_prompt": "x"})
    got = await store.get_owned(conv.id, "alice")
    assert (got.title, got.system_prompt) == ("Renamed", "x")
    await store.delete(conv.id, "alice")
    assert await store.get(conv.id) is None
    items, _ = await store.list_for_user("alice")
    assert items == []


def test_fallback_title_is_the_first_words() -> None:
    assert (
        title_from_text("  How do   tides work on the moon and why exactly?")
        == "How do tides work on the moon and"
    )
    assert title_from_text("   ") == "New chat"
