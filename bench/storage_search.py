"""Search latency and memory for the storage benchmark (``bench/storage.py``):
one user's conversations beside another's, written with the bulk writer;
Redis memory per 1,000 messages for the previous layout, this one, and the
search index on top."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import sys
import time
from typing import Any

from redis.exceptions import ResponseError

from bench.harness import load_average, pct
from bench.storage_text import VOCAB, WEIGHTS, chain, text
from shared.conversation import Conversation, Message, new_id
from shared.keys import Keys
from shared.redis_client import make_redis
from shared.store import ConversationStore
from shared.store.search import Search, ensure_index

KEYS = Keys("tc:")


# --- 2. search ---------------------------------------------------------------------


async def write_user(
    store: ConversationStore, uid: str, convs: int, per: int, chars: int, seed: int
) -> None:
    rng = random.Random(seed)
    for c in range(convs):
        cid = new_id()
        t = time.time() - per
        messages: dict[str, Message] = {}
        parent = None
        for i in range(per):
            m = Message(
                id=f"m{i}",
                parent_id=parent,
                role="user" if i % 2 == 0 else "assistant",
                content=text(rng, chars),
                created_at=t + i,
            )
            messages[m.id] = m
            parent = m.id
        conv = Conversation(
            id=cid,
            owner=uid,
            title=" ".join(rng.choices(VOCAB, WEIGHTS, k=4)),
            created_at=t,
            updated_at=t + per,
            current_id=parent,
            messages=messages,
        )
        await store.bulk.write(conv)
        if c % 200 == 0:
            print(f"  {uid}: {c:,}/{convs:,} conversations", file=sys.stderr, flush=True)


async def search_bench(url: str, convs: int, per: int, chars: int, queries: int) -> None:
    redis = make_redis(url)
    try:
        await redis.flushall()
        store = ConversationStore(redis, KEYS)
        search = Search(redis, KEYS, store)
        await search.ensure_index()
        await write_user(store, "searcher", convs, per, chars, seed=3)
        await write_user(store, "someone-else", convs, per, chars, seed=4)
        await until_indexed(search)
        rng = random.Random(5)
        times: list[float] = []
        hits = 0
        for q in range(queries):
            words = rng.sample(VOCAB[:60], rng.choice([1, 2, 3]))
            if q % 2:
                words[-1] = words[-1][: max(2, len(words[-1]) - 2)]  # typing: a prefix
            started = time.perf_counter()
            found = await search.search("searcher", " ".join(words))
            times.append(time.perf_counter() - started)
            hits += len(found)
        info = await redis.info("memory")
        print(
            f"search, {convs:,} conversations / {convs * per:,} messages of one user "
            f"(+ as many of another user's), {queries} queries of 1-3 words: "
            f"p50 {pct(times, 50) * 1000:.1f} ms, p95 {pct(times, 95) * 1000:.1f} ms "
            f"({hits / queries:.0f} results a query); Redis used_memory "
            f"{int(info['used_memory']) / 1e6:.0f} MB ({load_average()})"
        )
    finally:
        await redis.flushall()
        await redis.aclose()


async def until_indexed(search: Search) -> None:
    """The index has scanned the keys written before it (polled: FT.INFO)."""
    for _ in range(3_000):
        if not await search.indexing():
            return
        await asyncio.sleep(0.2)


# --- 3. memory -----------------------------------------------------------------------


async def used(redis: Any) -> int:
    await asyncio.sleep(0.2)
    return int((await redis.info("memory"))["used_memory"])


async def memory_bench(url: str, n: int, chars: int) -> None:
    redis = make_redis(url)
    try:
        doc = chain(n, chars, seed=7)
        conv = Conversation.model_validate(
            {**doc, "id": new_id(), "owner": "memo", "created_at": 1.0, "updated_at": 2.0}
        )
        per = 1000 / n

        await redis.config_set("slowlog-max-len", 128)  # the turns' log holds memory too
        await redis.slowlog_reset()
        await redis.flushall(asynchronous=False)
        with contextlib.suppress(ResponseError):  # the gateway's: measured on its own below
            await redis.execute_command("FT.DROPINDEX", KEYS.search_index())  # type: ignore[no-untyped-call]
        base = await used(redis)
        await redis.execute_command(  # type: ignore[no-untyped-call]
            "JSON.SET", f"tc:conv:{conv.id}", "$", json.dumps(conv.stored())
        )
        before = await used(redis) - base

        await redis.flushall(asynchronous=False)
        base = await used(redis)
        await ConversationStore(redis, KEYS).bulk.write(conv)
        await redis.script_flush()  # the bulk writer's Lua garbage is not data
        after = await used(redis) - base

        rows = []
        for messages in (True, False):
            with contextlib.suppress(ResponseError):  # none yet
                await redis.execute_command("FT.DROPINDEX", KEYS.search_index())  # type: ignore[no-untyped-call]
            bare = await used(redis)
            await ensure_index(redis, KEYS, messages=messages)
            search = Search(redis, KEYS, ConversationStore(redis, KEYS), messages=messages)
            await until_indexed(search)
            rows.append(await used(redis) - bare)
        print(f"| layout | KB per 1,000 messages ({n:,} messages of {chars} characters) |")
        print("|---|---|")
        print(f"| previous: one JSON document per conversation | {before * per / 1024:,.0f} |")
        print(
            f"| this layout (hash per message + tree) | {after * per / 1024:,.0f} "
            f"({(after / before - 1) * 100:+.0f}%) |"
        )
        print(f"| + search index, titles and message text | +{rows[0] * per / 1024:,.0f} |")
        titles_only = rows[1] * per / 1024
        print(f"| + search index, titles only (`SEARCH_MESSAGES=false`) | +{titles_only:,.0f} |")
    finally:
        await redis.flushall()
        await redis.aclose()
