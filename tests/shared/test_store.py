"""The conversation store, on the real server (its scripts need Redis)."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from shared.conversation import Conversation, Message
from shared.keys import CONTEXT_CALL_BYTES, Keys
from shared.store import (
    ConversationStore,
    MessageNotFoundError,
    NotFoundError,
    title_from_text,
)
from shared.store.bulk import plan


@pytest.fixture
def store(redis: Redis, keys: Keys) -> ConversationStore:
    return ConversationStore(redis, keys)


async def add(
    store: ConversationStore, cid: str, msg: Message, owner: str = "alice", **kw: object
) -> int:
    result = await store.add_message(cid, msg, owner=owner, **kw)  # type: ignore[arg-type]
    return result.status


def chain(n: int, start: int = 0, parent: str | None = None, prefix: str = "m") -> list[Message]:
    out = []
    for i in range(start, start + n):
        out.append(
            Message(
                id=f"{prefix}{i}",
                parent_id=parent,
                role="user" if i % 2 == 0 else "assistant",
                content=f"message number {i}",
                created_at=1000 + i,
            )
        )
        parent = out[-1].id
    return out


async def test_a_tree_keeps_every_version_with_children_oldest_first(
    store: ConversationStore,
) -> None:
    conv = await store.create("alice", title="Trip", system_prompt="be brief", model="m")
    await add(store, conv.id, Message(id="u1", role="user", content="hi", created_at=1))
    a1 = Message(id="a1", parent_id="u1", role="assistant", content="one", created_at=2)
    a2 = Message(id="a2", parent_id="u1", role="assistant", content="two", created_at=3)
    await add(store, conv.id, a1)
    await add(store, conv.id, a2)
    await add(
        store, conv.id, Message(id="u2", parent_id="a1", role="user", content="more", created_at=4)
    )

    got = await store.get_owned(conv.id, "alice")
    assert got.messages["u1"].children == ["a1", "a2"]
    assert got.messages["a1"].children == ["u2"]
    assert got.current_id == "u2"
    assert got.system_prompt == "be brief"
    assert [m.id for m in await store.branch(conv.id, "alice")] == ["u1", "a1", "u2"]
    assert [m.id for m in await store.branch(conv.id, "alice", "a2")] == ["u1", "a2"]


async def test_storing_the_same_message_twice_adds_it_once(
    store: ConversationStore, redis: Redis, keys: Keys
) -> None:
    conv = await store.create("alice")
    msg = Message(id="u1", role="user", content="héllo")
    first = await store.add_message(conv.id, msg, owner="alice")
    again = await store.add_message(conv.id, msg, owner="alice")
    assert (first.new, again.new) == (True, False)
    got = await store.get_owned(conv.id, "alice")
    assert list(got.messages) == ["u1"]
    assert await redis.hmget(keys.tree(conv.id), [".n", ".b", "^"]) == ["1", "6", "u1"]


async def test_a_reply_to_a_missing_or_foreign_conversation_is_not_stored(
    store: ConversationStore,
) -> None:
    conv = await store.create("alice")
    await add(store, conv.id, Message(id="u1", role="user", content="hi"))
    reply = Message(id="a1", parent_id="u1", role="assistant", content="x")
    assert await add(store, conv.id, reply, owner="mallory") == -1
    assert await add(store, "nope", reply) == -1
    orphan = Message(id="a2", parent_id="gone", role="assistant", content="x")
    assert await add(store, conv.id, orphan) == -2
    assert set((await store.get_owned(conv.id, "alice")).messages) == {"u1"}


async def test_another_users_conversation_is_not_found(store: ConversationStore) -> None:
    conv = await store.create("alice")
    with pytest.raises(NotFoundError):
        await store.get_owned(conv.id, "mallory")
    with pytest.raises(NotFoundError):
        await store.owned_head(conv.id, "mallory")
    with pytest.raises(NotFoundError):
        await store.page(conv.id, "mallory")
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


async def test_a_frame_marker_makes_a_resend_write_nothing(
    store: ConversationStore, redis: Redis, keys: Keys
) -> None:
    conv = Conversation(id="c1", owner="alice", title="t", created_at=1, updated_at=1)
    marker = keys.client_frame("c1", "sess1", "client-1")
    for attempt in range(2):
        pipe = redis.pipeline(transaction=False)
        msg = Message(id=f"u{attempt}", role="user", content="hi")
        store.queue_add_message(
            pipe, "c1", msg, owner="alice", marker=marker, marker_ttl=60, create=conv, bump=True
        )
        status = (await pipe.execute())[0][0]
        assert status == (1 if attempt == 0 else 0)
    got = await store.get_owned("c1", "alice")
    assert list(got.messages) == ["u0"]
    assert await redis.zscore(keys.user_conversations("alice"), "c1") is not None


async def test_pages_walk_the_branch_from_its_leaf_with_what_the_navigator_needs(
    store: ConversationStore,
) -> None:
    conv = await store.create("alice")
    for m in chain(10):
        await add(store, conv.id, m)
    # an edit of m4: a sibling with its own reply
    await add(store, conv.id, Message(id="e4", parent_id="m3", role="user", content="edited"))
    await add(store, conv.id, Message(id="e5", parent_id="e4", role="assistant", content="r"))

    tail = await store.page(conv.id, "alice", limit=3)
    assert tail.current_id == "e5"
    assert tail.branch == ["m3", "e4", "e5"]
    assert tail.messages["m3"].children == ["m4", "e4"]
    assert tail.head_siblings == ["m3"]
    assert tail.older == "m2"
    assert tail.message_count == 12

    above = await store.page(conv.id, "alice", leaf=tail.older, limit=10)
    assert above.branch == ["m0", "m1", "m2"]
    assert above.older is None
    assert above.head_siblings == ["m0"]

    # the other version of m4, and the branch under it
    old = await store.page(conv.id, "alice", leaf="m9", limit=6)
    assert old.branch == ["m4", "m5", "m6", "m7", "m8", "m9"]
    assert old.head_siblings == ["m4", "e4"]
    with pytest.raises(MessageNotFoundError):
        await store.page(conv.id, "alice", leaf="nope")


async def test_a_page_holds_at_least_one_message_and_at_most_its_bytes(
    store: ConversationStore,
) -> None:
    conv = await store.create("alice")
    for m in chain(6):
        m.content = "x" * 1000
        await add(store, conv.id, m)
    page = await store.page(conv.id, "alice", max_bytes=2500)
    assert page.branch == ["m3", "m4", "m5"]
    page = await store.page(conv.id, "alice", max_bytes=10)
    assert page.branch == ["m5"]


async def test_switching_a_branch_goes_to_its_newest_leaf(store: ConversationStore) -> None:
    conv = await store.create("alice")
    for m in chain(4):
        await add(store, conv.id, m)
    for m in chain(30, start=100, parent="m1", prefix="b"):
        await add(store, conv.id, m)
    await store.update(conv.id, "alice", {"current_id": "m3"})

    switched = await store.switch_branch(conv.id, "alice", "b100")
    assert switched.current_id == "b129"
    assert switched.down.branch[:2] == ["b100", "b101"]
    assert switched.down.head_siblings == ["m2", "b100"]
    assert (await store.owned_head(conv.id, "alice")).current_id == "b129"
    assert switched.tail is None  # the first page reached the leaf

    back = await store.switch_branch(conv.id, "alice", "m2")
    assert back.current_id == "m3"
    assert back.down.branch == ["m2", "m3"]

    down = await store.page_down(conv.id, "alice", "b100", limit=5)
    assert down.branch == ["b101", "b102", "b103", "b104", "b105"]
    assert down.newer == "b105"
    assert down.head_siblings == ["b101"]


async def test_a_turn_reads_its_branch_only_as_far_as_its_budget(
    store: ConversationStore,
) -> None:
    conv = await store.create("alice", system_prompt="sys")
    messages = chain(40)
    for m in messages:
        m.content = "y" * 40  # 10 tokens + 4 of overhead each
        await add(store, conv.id, m)
    ctx = await store.context(conv.id, "m39", "turn-1", budget=70)
    assert ctx is not None
    assert [m.id for m in ctx.branch] == [f"m{i}" for i in range(35, 40)]
    assert not ctx.complete
    assert (ctx.owner, ctx.system_prompt, ctx.stored_reply) == ("alice", "sys", None)
    assert ctx.replied
    full = await store.context(conv.id, "m39", "m39", budget=10_000)
    assert full is not None and full.complete and len(full.branch) == 40
    assert full.stored_reply is not None and full.stored_reply.id == "m39"
    assert await store.context("nope", "m1", "t", budget=10) is None


async def test_a_long_context_is_read_in_bounded_calls(
    store: ConversationStore, redis: Redis
) -> None:
    conv = await store.create("alice")
    messages = chain(100)
    pipe = redis.pipeline(transaction=False)
    for m in messages:
        m.content = "z" * 1000  # 250 tokens + 4 of overhead each
        store.queue_add_message(pipe, conv.id, m, owner="alice")
    await pipe.execute()
    await store.context(conv.id, "m99", "t", budget=20_000)  # the scripts loaded
    await redis.config_set("slowlog-log-slower-than", 0)
    await redis.slowlog_reset()
    ctx = await store.context(conv.id, "m99", "t", budget=20_000)
    assert ctx is not None and not ctx.complete
    # 79 messages reach the budget (78 x 254 < 20,000 <= 79 x 254): the
    # same as one long walk would read, in calls of CONTEXT_CALL_BYTES each.
    assert [m.id for m in ctx.branch] == [f"m{i}" for i in range(21, 100)]
    calls = [r for r in await redis.slowlog_get(100) if "EVALSHA" in str(r["command"])]
    per_call = -(-CONTEXT_CALL_BYTES // 1000)  # a call stops once past its cap: 17 messages
    assert len(calls) == -(-79 // per_call)
    await redis.config_set("slowlog-log-slower-than", 10_000)


async def test_list_pages_newest_first(store: ConversationStore) -> None:
    ids = []
    for i in range(7):
        conv = await store.create("alice", title=f"chat {i}")
        msg = Message(id=f"u{i}", role="user", content="hi", created_at=100 + i)
        pipe = store.redis.pipeline(transaction=False)
        store.queue_add_message(pipe, conv.id, msg, owner="alice", bump=True)
        await pipe.execute()
        ids.append(conv.id)
    await store.create("bob", title="chat of bob")

    page1, cursor = await store.list_for_user("alice", limit=3)
    assert [c.id for c in page1] == ids[::-1][:3]
    page2, cursor2 = await store.list_for_user("alice", limit=3, cursor=cursor)
    assert [c.id for c in page2] == ids[::-1][3:6]
    page3, cursor3 = await store.list_for_user("alice", limit=3, cursor=cursor2)
    assert [c.id for c in page3] == ids[:1]
    assert cursor3 is None
    assert page1[0].updated_at == 106


async def test_update_and_delete(store: ConversationStore, redis: Redis, keys: Keys) -> None:
    conv = await store.create("alice")
    for m in chain(5):
        await add(store, conv.id, m)
    await store.update(conv.id, "alice", {"title": "Renamed", "system_prompt": "x"})
    got = await store.get_owned(conv.id, "alice")
    assert (got.title, got.system_prompt) == ("Renamed", "x")
    with pytest.raises(MessageNotFoundError):
        await store.update(conv.id, "alice", {"current_id": "nope"})
    with pytest.raises(NotFoundError):
        await store.delete(conv.id, "mallory")
    await store.delete(conv.id, "alice")
    assert await store.get(conv.id) is None
    items, _ = await store.list_for_user("alice")
    assert items == []
    assert [k async for k in redis.scan_iter(f"*{conv.id}*")] == []
    with pytest.raises(NotFoundError):
        await store.delete(conv.id, "alice")


async def test_a_half_done_delete_is_finished_by_the_sweep(
    store: ConversationStore, redis: Redis, keys: Keys
) -> None:
    conv = await store.create("alice")
    for m in chain(3):
        await add(store, conv.id, m)
    # A delete that died after marking the conversation (as a crash would leave it).
    await redis.zadd(keys.cleanup(), {f"{conv.id} alice": 1})
    await redis.hset(keys.conversation(conv.id), "del", "1")
    assert await store.get(conv.id) is None
    assert await store.bulk.sweep() == 1
    assert [k async for k in redis.scan_iter(f"*{conv.id}*")] == []
    assert await redis.zcard(keys.cleanup()) == 0


async def test_only_a_failed_reply_can_be_removed(store: ConversationStore) -> None:
    conv = await store.create("alice")
    await add(store, conv.id, Message(id="u1", role="user", content="q"))
    failed = Message(id="a1", parent_id="u1", role="assistant", content="", finish_reason="error")
    await add(store, conv.id, failed)
    good = Message(id="a2", parent_id="u1", role="assistant", content="ok", finish_reason="stop")
    await add(store, conv.id, good, set_current=False)
    assert await store.remove_failed(conv.id, "a2") is None
    assert await store.remove_failed(conv.id, "a1") == 0
    got = await store.get_owned(conv.id, "alice")
    assert got.messages["u1"].children == ["a2"]
    assert got.current_id == "u1"


async def test_a_written_conversation_reads_back_whole(store: ConversationStore) -> None:
    messages = {m.id: m for m in chain(7)}
    messages["x3"] = Message(
        id="x3", parent_id="m2", role="assistant", content="alt", created_at=2000, model="mm"
    )
    conv = Conversation(
        id="cw",
        owner="alice",
        title="t",
        model="m",
        system_prompt="s",
        created_at=1,
        updated_at=5,
        current_id="x3",
        messages=messages,
    )
    await store.bulk.write(conv)
    got = await store.get_owned("cw", "alice")
    assert got.model_dump() == conv.model_dump()
    page = await store.page("cw", "alice")
    assert page.branch == ["m0", "m1", "m2", "x3"]
    assert page.messages["m2"].children == ["m3", "x3"]


async def test_a_bulk_written_message_is_one_hset(store: ConversationStore, redis: Redis) -> None:
    """The query engine indexes a hash again on every write to it: a message
    written in bulk (an import, the migration) is one HSET, extras and all."""
    replies = [
        Message(
            id=f"r{i}", role="assistant", content=f"reply {i}", finish_reason="stop", model="mm"
        )
        for i in range(20)
    ]
    encoded = plan(
        Conversation(
            id="hs",
            owner="alice",
            title="t",
            created_at=1,
            updated_at=2,
            messages={m.id: m for m in replies},
        )
    )
    before = await _hset_calls(redis)
    await store.bulk._messages(
        keys=[store.keys.conversation("hs")],
        args=[store.keys.message_prefix("hs"), encoded.messages[0], 0],
    )
    assert await _hset_calls(redis) - before == len(replies)
    assert (await store.message("hs", "r3")) == replies[3]


async def _hset_calls(redis: Redis) -> int:
    stats = await redis.info("commandstats")
    return int(stats.get("cmdstat_hset", {}).get("calls", 0))


def test_fallback_title_is_the_first_words() -> None:
    assert (
        title_from_text("  How do   tides work on the moon and why exactly?")
        == "How do tides work on the moon and"
    )
    assert title_from_text("   ") == "New chat"
