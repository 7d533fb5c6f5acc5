"""The collection store's scripts on real Redis: each user's collections are
their own, deleting one detaches it from every conversation at once, and
the limits hold."""

from __future__ import annotations

from redis.asyncio import Redis

from shared.collections import CollectionStore
from shared.keys import MAX_ATTACHED_COLLECTIONS, MAX_COLLECTIONS, Keys

KEYS = Keys("tc:")


async def test_a_collection_is_its_owners_only(redis: Redis) -> None:
    store = CollectionStore(redis, KEYS)
    made = await store.create("alice", "c1", "Handbook")
    assert made is not None and made.name == "Handbook"
    assert await store.add_file("alice", "c1", "f1")
    # Bob names Alice's collection: it is not among his.
    assert await store.get("bob", "c1") is None
    assert await store.list_for_user("bob") == []
    assert not await store.rename("bob", "c1", "mine now")
    assert not await store.add_file("bob", "c1", "f2")
    assert await store.attach("bob", "c1", "bobs-conv") == "missing"
    assert await store.conversation_file_ids("bob", "bobs-conv") == []
    assert not await store.forget("bob", "c1")
    got = await store.get("alice", "c1")
    assert got is not None and (got.name, got.files) == ("Handbook", 1)
    assert await store.attach("alice", "c1", "conv") == "ok"
    assert await store.conversation_file_ids("alice", "conv") == ["f1"]


async def test_deleting_a_collection_detaches_it_everywhere(redis: Redis) -> None:
    store = CollectionStore(redis, KEYS)
    for colid in ("a", "b"):
        await store.create("u", colid, colid.upper())
        await store.add_file("u", colid, f"file-{colid}")
    for cid in ("c1", "c2"):
        assert await store.attach("u", "a", cid) == "ok"
    assert await store.attach("u", "b", "c2") == "ok"
    assert await store.attach("u", "a", "c2") == "ok"  # again: no change
    assert await store.attached("u", "c2") == ["a", "b"]
    assert await store.rename("u", "a", "Renamed")
    assert [c.name for c in await store.list_for_user("u")] == ["Renamed", "B"]

    assert await store.forget("u", "a")
    assert await store.attached("u", "c1") == []
    assert await store.attached("u", "c2") == ["b"]
    assert await store.conversation_file_ids("u", "c2") == ["file-b"]
    assert await redis.exists(KEYS.collection_files("u", "a")) == 0
    assert not await store.add_file("u", "a", "late")  # an upload that lost the race
    assert await redis.hkeys(KEYS.attached_collections("u")) == ["c2"]
    await store.detach("u", "b", "c2")
    assert await redis.exists(KEYS.attached_collections("u")) == 0


async def test_limits(redis: Redis) -> None:
    store = CollectionStore(redis, KEYS)
    for i in range(MAX_COLLECTIONS):
        assert await store.create("u", f"c{i}", "x") is not None
    assert await store.create("u", "one-more", "x") is None
    for i in range(MAX_ATTACHED_COLLECTIONS):
        assert await store.attach("u", f"c{i}", "conv") == "ok"
    assert await store.attach("u", f"c{MAX_ATTACHED_COLLECTIONS}", "conv") == "full"
    await store.delete_all_keys("u")
    assert await redis.keys("tc:user:{u}:*") == []
