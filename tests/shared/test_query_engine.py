"""The query engine on tidechat's local Redis 8 (JSON and search modules), as
later work will use it: JSON documents indexed with TEXT, TAG, NUMERIC and
an HNSW VECTOR field; searches filtered by an owner TAG inside the query;
KNN; prefix matching, highlighted snippets, sorting, aggregation, aliases;
an index that survives a restart. What works and the quirks: docs/redis.md.
"""

from __future__ import annotations

import asyncio
import json
import struct
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, cast

import pytest
from redis.asyncio import Redis
from redis.commands.search.aggregation import AggregateRequest
from redis.commands.search.field import NumericField, TagField, TextField, VectorField
from redis.commands.search.index_definition import IndexDefinition, IndexType
from redis.commands.search.query import Query
from redis.commands.search.reducers import count

from shared.redis_client import make_redis
from tests.support.redis_servers import TEST_REDIS
from tidechat.local_redis import LocalRedis

pytestmark = pytest.mark.skipif(
    TEST_REDIS == "cluster",
    reason="the local search module has no cluster coordinator: FT.SEARCH returns no fields "
    "on a cluster node (docs/redis.md)",
)

INDEX = "t:idx"
PREFIX = "t:doc:"

#: Two users, the same words: a search must never show one user the other's.
DOCS = {
    "1": {"owner": "ann-1", "title": "Tides", "text": "the tide tables of the north sea", "n": 3, "v": [1.0, 0.0]},
    "2": {"owner": "ann-1", "title": "Bread", "text": "sourdough starter and rye", "n": 5, "v": [0.0, 1.0]},
    "3": {"owner": "ann-1", "title": "Boats", "text": "tidal currents and small boats", "n": 8, "v": [0.6, 0.8]},
    "4": {"owner": "bob-2", "title": "Tides too", "text": "the tide came in", "n": 1, "v": [1.0, 0.01]},
}  # fmt: skip


def vector(*values: float) -> bytes:
    """A FLOAT32 query vector as the engine wants it in PARAMS."""
    return struct.pack(f"<{len(values)}f", *values)


async def command(redis: Redis, *args: Any) -> Any:
    execute = cast(Callable[..., Awaitable[Any]], redis.execute_command)
    return await execute(*args)


async def create_index(redis: Redis) -> None:
    await command(
        redis,
        "FT.CREATE", INDEX, "ON", "JSON", "PREFIX", "1", PREFIX,
        "SCHEMA",
        "$.title", "AS", "title", "TEXT", "WEIGHT", "2",
        "$.text", "AS", "text", "TEXT",
        "$.owner", "AS", "owner", "TAG",
        "$.n", "AS", "n", "NUMERIC", "SORTABLE",
        "$.v", "AS", "v", "VECTOR", "HNSW", "6", "TYPE", "FLOAT32", "DIM", "2",
        "DISTANCE_METRIC", "COSINE",
    )  # fmt: skip


async def put_docs(redis: Redis, docs: dict[str, dict[str, Any]] = DOCS) -> None:
    for key, doc in docs.items():
        await command(redis, "JSON.SET", PREFIX + key, "$", json.dumps(doc))


async def wait_indexed(redis: Redis, index: str = INDEX, timeout: float = 30) -> dict[str, Any]:
    """FT.CREATE indexes keys that already exist in the background: until
    ``indexing`` is 0, searches miss some of them (keys written after the
    index exists are indexed as they are written)."""
    deadline = time.monotonic() + timeout
    while True:
        info = cast(dict[str, Any], await redis.ft(index).info())
        if int(info["indexing"]) == 0:
            return info
        assert time.monotonic() < deadline, f"{index} still indexing: {info['percent_indexed']}"
        await asyncio.sleep(0.02)


async def search(redis: Redis, query: str, *args: Any) -> list[str]:
    """Raw ``FT.SEARCH … DIALECT 2``: the ids, in order. Our clients speak
    RESP3 (redis-py 8's default), so the reply is a map, not RESP2's array."""
    reply = await command(redis, "FT.SEARCH", INDEX, query, *args, "DIALECT", "2")
    assert set(reply) >= {"total_results", "results"}
    return [r["id"] for r in reply["results"]]


@pytest.fixture
async def indexed(redis: Redis) -> Redis:
    await create_index(redis)
    await put_docs(redis)
    return redis


async def test_documents_written_after_the_index_are_found_at_once(indexed: Redis) -> None:
    info = await indexed.ft(INDEX).info()
    assert info["num_docs"] == len(DOCS) and info["hash_indexing_failures"] == 0
    types = {a[3]: a[5] for a in info["attributes"]}  # attribute name -> type
    assert types == {"title": "TEXT", "text": "TEXT", "owner": "TAG", "n": "NUMERIC", "v": "VECTOR"}
    await command(indexed, "JSON.SET", PREFIX + "5", "$", json.dumps({**DOCS["1"], "text": "moon"}))
    assert await search(indexed, "moon", "NOCONTENT") == [PREFIX + "5"]


async def test_text_search_is_filtered_by_the_owner_tag_inside_the_query(indexed: Redis) -> None:
    # The owner goes in as a parameter: no escaping of '-' and no injection.
    query = "@owner:{$owner} tide"
    ann = await search(indexed, query, "PARAMS", "2", "owner", "ann-1", "NOCONTENT")
    bob = await search(indexed, query, "PARAMS", "2", "owner", "bob-2", "NOCONTENT")
    assert ann == [PREFIX + "1"] and bob == [PREFIX + "4"]
    # Written into the query text, an unescaped '-' silently matches nothing.
    assert await search(indexed, "@owner:{ann-1} tide", "NOCONTENT") == []
    assert await search(indexed, "@owner:{ann\\-1} tide", "NOCONTENT") == [PREFIX + "1"]


async def test_prefix_matching_with_highlighted_snippets(indexed: Redis) -> None:
    reply = await command(
        indexed,
        "FT.SEARCH", INDEX, "@owner:{$owner} tid*", "PARAMS", "2", "owner", "ann-1",
        "RETURN", "1", "text",
        "SUMMARIZE", "FIELDS", "1", "text", "FRAGS", "1", "LEN", "4",
        "HIGHLIGHT", "FIELDS", "1", "text", "TAGS", "<mark>", "</mark>",
        "DIALECT", "2",
    )  # fmt: skip
    snippets = {r["id"]: r["extra_attributes"]["text"] for r in reply["results"]}
    assert set(snippets) == {PREFIX + "1", PREFIX + "3"}  # tide, tidal; never bob's
    assert "<mark>tide</mark>" in snippets[PREFIX + "1"]
    assert "<mark>tidal</mark>" in snippets[PREFIX + "3"]


async def test_title_weight_ranks_a_title_match_first(indexed: Redis) -> None:
    await command(indexed, "JSON.SET", PREFIX + "6", "$", json.dumps({**DOCS["2"], "title": "Rye"}))
    ranked = await search(indexed, "@owner:{$o} rye", "PARAMS", "2", "o", "ann-1", "NOCONTENT")
    assert ranked == [PREFIX + "6", PREFIX + "2"]


async def test_knn_within_one_owner_ranks_by_distance(indexed: Redis) -> None:
    reply = await command(
        indexed,
        "FT.SEARCH", INDEX, "(@owner:{$owner})=>[KNN 2 @v $q AS dist]",
        "PARAMS", "4", "owner", "ann-1", "q", vector(1.0, 0.0),
        "SORTBY", "dist", "RETURN", "2", "dist", "title", "DIALECT", "2",
    )  # fmt: skip
    hits = [(r["id"], r["extra_attributes"]["title"]) for r in reply["results"]]
    # bob's doc is nearer than ann's second, and still never shown to ann.
    assert hits == [(PREFIX + "1", "Tides"), (PREFIX + "3", "Boats")]
    distances = [float(r["extra_attributes"]["dist"]) for r in reply["results"]]
    assert distances[0] == pytest.approx(0.0, abs=1e-6) and distances[1] == pytest.approx(0.4)


async def test_numeric_range_sort_and_paging(indexed: Redis) -> None:
    args = ("PARAMS", "2", "o", "ann-1", "SORTBY", "n", "DESC", "NOCONTENT")
    assert await search(indexed, "@owner:{$o} @n:[4 +inf]", *args) == [PREFIX + "3", PREFIX + "2"]
    page = await search(indexed, "@owner:{$o}", *args, "LIMIT", "1", "1")
    assert page == [PREFIX + "2"]


async def test_aggregate_counts_per_owner(indexed: Redis) -> None:
    result = await indexed.ft(INDEX).aggregate(
        AggregateRequest("*").group_by("@owner", count().alias("docs")).dialect(2)
    )
    rows = {row[1]: int(row[3]) for row in result.rows}
    assert rows == {"ann-1": 3, "bob-2": 1}


async def test_redis_py_ft_helpers_on_our_decoding_client(redis: Redis) -> None:
    """``make_redis`` clients decode replies (``decode_responses=True``) and
    speak RESP3; ``ft()`` still builds the index and returns ``Result``
    objects with str fields (a JSON document's vector is a list of numbers,
    so nothing binary comes back to decode)."""
    ft = redis.ft(INDEX)
    await ft.create_index(
        [
            TextField("$.text", as_name="text"),
            TagField("$.owner", as_name="owner"),
            NumericField("$.n", as_name="n", sortable=True),
            VectorField(
                "$.v",
                "HNSW",
                {"TYPE": "FLOAT32", "DIM": 2, "DISTANCE_METRIC": "COSINE"},
                as_name="v",
            ),
        ],
        definition=IndexDefinition(prefix=[PREFIX], index_type=IndexType.JSON),
    )
    await put_docs(redis)
    query = Query("(@owner:{$owner})=>[KNN 1 @v $q AS dist]").return_fields("dist", "text")
    args = query.get_args()
    assert args[args.index("DIALECT") + 1] == 2  # redis-py adds DIALECT 2 itself
    result = await ft.search(query, query_params={"owner": "bob-2", "q": vector(1.0, 0.0)})
    assert result.total == 1
    doc = result.docs[0]
    assert (doc.id, doc.text) == (PREFIX + "4", "the tide came in")
    whole = await ft.search(Query("@owner:{$owner}"), query_params={"owner": "bob-2"})
    assert json.loads(whole.docs[0].json)["v"] == [1.0, 0.01]


async def test_a_document_that_fails_to_index_is_left_out_whole(indexed: Redis) -> None:
    """A vector of the wrong size drops the whole document from the index (its
    text too), silently: JSON.SET succeeds and only FT.INFO counts it. A
    document without the vector field is indexed without it."""
    await command(
        indexed,
        "JSON.SET",
        PREFIX + "bad",
        "$",
        json.dumps({**DOCS["1"], "text": "kelp", "v": [1, 0, 0]}),
    )
    await command(
        indexed,
        "JSON.SET",
        PREFIX + "novec",
        "$",
        json.dumps({"owner": "ann-1", "text": "kelp forest"}),
    )
    assert await search(indexed, "kelp", "NOCONTENT") == [PREFIX + "novec"]
    info = await indexed.ft(INDEX).info()
    assert info["hash_indexing_failures"] == 1


async def test_existing_keys_are_indexed_in_the_background(redis: Redis) -> None:
    docs = {str(i): {**DOCS["1"], "n": i} for i in range(2_000)}
    await put_docs(redis, docs)
    await create_index(redis)
    info = await wait_indexed(redis)
    assert info["num_docs"] == len(docs)
    assert len(await search(redis, "@n:[1990 +inf]", "NOCONTENT")) == 10


async def test_an_alias_swaps_indexes_for_a_rebuild(indexed: Redis) -> None:
    """Rebuild under a new name, then move the alias: readers never see a
    missing index (what a migration that changes the schema does)."""
    await command(indexed, "FT.ALIASADD", "t:conv", INDEX)
    await command(
        indexed, "FT.CREATE", "t:idx2", "ON", "JSON", "PREFIX", "1", PREFIX,
        "SCHEMA", "$.title", "AS", "title", "TEXT",
    )  # fmt: skip
    await wait_indexed(indexed, "t:idx2")
    await command(indexed, "FT.ALIASUPDATE", "t:conv", "t:idx2")
    reply = await command(
        indexed, "FT.SEARCH", "t:conv", "@title:boats", "NOCONTENT", "DIALECT", "2"
    )
    assert [r["id"] for r in reply["results"]] == [PREFIX + "3"]


@pytest.mark.slow
async def test_an_index_survives_a_restart_with_aof(tmp_path: Path) -> None:
    server = LocalRedis(tmp_path / "redis")  # AOF on, as `tidechat up` runs it
    server.start()
    try:
        client = make_redis(server.url)
        await create_index(client)
        await put_docs(client)
        await client.aclose()
        server.stop()
        server.start()
        client = make_redis(server.url)
        try:
            assert await command(client, "FT._LIST") == [INDEX]
            await wait_indexed(client)
            found = await search(
                client, "@owner:{$o} tide", "PARAMS", "2", "o", "bob-2", "NOCONTENT"
            )
            assert found == [PREFIX + "4"]
        finally:
            await client.aclose()
    finally:
        server.stop()
