"""Search on the query engine (real Redis: the index is the point)."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from shared.conversation import Conversation, Message
from shared.keys import Keys
from shared.store import ConversationStore
from shared.store import search as search_module
from shared.store.search import Search, build_query, query_words, snippet

KEYS = Keys("tc:")


async def ready(search: Search) -> None:
    await search.ensure_index()
    for _ in range(500):
        if not await search.indexing():
            return
        await asyncio.sleep(0.01)


async def conversation(store: ConversationStore, owner: str, title: str, *texts: str) -> str:
    conv = await store.create(owner, title=title)
    parent = None
    for i, text in enumerate(texts):
        m = Message(
            id=f"{conv.id[:8]}m{i}",
            parent_id=parent,
            role="user" if i % 2 == 0 else "assistant",
            content=text,
            created_at=1000 + i,
        )
        await store.add_message(conv.id, m, owner=owner)
        parent = m.id
    return conv.id


@pytest.fixture
async def search(redis: Redis) -> Search:
    s = Search(redis, KEYS, ConversationStore(redis, KEYS))
    await s.ensure_index()
    return s


async def test_finds_titles_and_text_ranked_with_a_snippet(search: Search) -> None:
    store = search.store
    trip = await conversation(store, "ann-1", "Trip to Lisbon", "Where do trams go?", "Tram 28.")
    tides = await conversation(
        store,
        "ann-1",
        "Sea",
        "Tell me " + "lots of words " * 30 + "about spring tides and neap tides",
        "Spring tides happen at new and full moon.",
    )
    await ready(search)
    hits = await search.search("ann-1", "lisbon")
    assert [h.id for h in hits] == [trip] and hits[0].snippet is None  # the title matched

    hits = await search.search("ann-1", "spring tid")  # the last word as a prefix
    assert [h.id for h in hits] == [tides]
    snip = hits[0].snippet
    assert snip is not None
    marked = [snip.text[h.start : h.end].lower() for h in snip.highlights]
    assert "spring" in marked and any(w.startswith("tid") for w in marked)


async def test_only_the_owners_conversations_are_searched(search: Search) -> None:
    store = search.store
    mine = await conversation(store, "ann-1", "Mine", "the secret word is pelican")
    await conversation(store, "bob", "Bob's", "pelican pelican pelican, bob's secret")
    await conversation(store, "ann", "Prefix of ann-1", "pelican again")
    await ready(search)
    assert [h.id for h in await search.search("ann-1", "pelican")] == [mine]
    # Query syntax typed into the box is words, not syntax: no other owner, no error.
    for hostile in ("pelican | @o:{bob}", "pelican) | (@o:{bob} pelican", "*", "-pelican", '"'):
        found = await search.search("ann-1", hostile)
        assert {h.id for h in found} <= {mine}, hostile


async def test_deleted_conversations_and_replay_copies_are_not_found(
    search: Search, redis: Redis
) -> None:
    store = search.store
    gone = await conversation(store, "ann-1", "Gone", "albatross")
    copy = await conversation(store, "ann-1", "Copy", "albatross")
    await redis.hset(KEYS.conversation(copy), "rp", gone)
    await ready(search)
    assert len(await search.search("ann-1", "albatross")) == 1
    await store.delete(gone, "ann-1")
    assert await search.search("ann-1", "albatross") == []


async def test_a_conversation_matching_everywhere_leaves_room_for_the_others(
    search: Search,
) -> None:
    """The best documents all belong to one conversation (more of them than
    the first page of ids): the other matching conversations are still found."""
    store = search.store
    dense = Conversation(
        id="dense",
        owner="ann-1",
        title="Birds",
        created_at=1.0,
        updated_at=2.0,
        messages={
            f"d{i}": Message(
                id=f"d{i}",
                parent_id=f"d{i - 1}" if i else None,
                role="user",
                content="heron heron",
                created_at=1000 + i,
            )
            for i in range(search_module.SEARCH_DOCS + 20)
        },
    )
    await store.bulk.write(dense)
    filler = "a long message about other things entirely " * 10
    others = [await conversation(store, "ann-1", f"Other {i}", filler + "heron") for i in range(3)]
    await ready(search)
    hits = await search.search("ann-1", "heron", limit=10)
    assert hits[0].id == "dense"
    assert {h.id for h in hits} == {"dense", *others}


async def test_message_text_can_be_left_out_of_the_index(redis: Redis) -> None:
    store = ConversationStore(redis, KEYS)
    titles_only = Search(redis, KEYS, store, messages=False)
    await titles_only.ensure_index()
    cid = await conversation(store, "ann-1", "Cormorant notes", "a word only in text: gannet")
    await ready(titles_only)
    assert [h.id for h in await titles_only.search("ann-1", "cormorant")] == [cid]
    assert await titles_only.search("ann-1", "gannet") == []
    # Turning it back on rebuilds the index over the existing messages.
    both = Search(redis, KEYS, store, messages=True)
    assert await both.ensure_index()
    await ready(both)
    assert [h.id for h in await both.search("ann-1", "gannet")] == [cid]


def test_queries_are_words_and_the_last_is_a_prefix() -> None:
    assert query_words("Spring-tides, @o:{x}!") == ["spring", "tides", "o", "x"]
    assert build_query(["spring", "ti"]) == "@t:(spring ti*)"
    assert build_query(["a"]) == "@t:(a)"  # one letter: no prefix (the engine needs two)


def test_snippets_cut_around_the_match_and_mark_it() -> None:
    text = "x " * 200 + "the Spring tide is high " + "y " * 200
    s = snippet("m", text, ["spring", "ti"], width=60)
    assert s.text.startswith("…") and s.text.endswith("…") and len(s.text) <= 62
    assert [s.text[h.start : h.end] for h in s.highlights] == ["Spring", "tide"]


async def test_gateways_starting_together_both_find_the_index(
    redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    with contextlib.suppress(ResponseError):
        await redis.execute_command("FT.DROPINDEX", KEYS.search_index())  # type: ignore[no-untyped-call]
    store = ConversationStore(redis, KEYS)
    assert await Search(redis, KEYS, store).ensure_index()

    # The other gateway looked before the first created it: its FT.CREATE
    # finds the index made.
    async def not_there_yet(*_args: object) -> None:
        raise ResponseError("Unknown index name")

    monkeypatch.setattr(search_module, "_info", not_there_yet)
    assert not await Search(redis, KEYS, store).ensure_index()
