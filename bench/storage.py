"""Long conversations and search on the storage layout (issue 12).

    .venv/bin/python -m bench.storage                       # 10,000 and 50,000 messages
    .venv/bin/python -m bench.storage --sizes 10000 --search-convs 200   # quicker

Starts its own Redis, a gateway and a worker (scripted model, replies at
once), and prints:

1. per conversation size: time to first text of a new turn against a
   2-message chat (same run), the slowest Redis command while those turns
   ran (SLOWLOG, every command logged), what ``GET /api/conversations/{id}``
   returns and how long it takes, and how long the import took;
2. search latency (p50, p95) for one user with ``--search-convs``
   conversations of ``--search-per-conv`` messages, with another user's
   data of the same size in the same Redis (written with the bulk writer,
   not through the API, to save time);
3. Redis memory per 1,000 messages: the previous layout (one JSON document
   per conversation), this layout, and the search index on top (the price
   of search), with message text indexed and without.

Text is Zipf-like: words drawn from a fixed vocabulary with 1/rank weights,
``--chars`` characters a message (600, as the issue measured).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
import time
from typing import Any

import httpx
import websockets
from redis.exceptions import ResponseError

from bench.harness import pct, run_async, spawn, stop, wait_http, workspace
from shared.conversation import Conversation, Message, new_id
from shared.keys import Keys
from shared.redis_client import make_redis
from shared.store import ConversationStore
from shared.store.search import Search, ensure_index
from tidechat.local_redis import free_port

MODELS = """
[[models]]
id = "scripted"
backend = "scripted"
reply_tokens = 16
tokens_per_second = 0
"""
PASSWORD = "benchmark pw"
KEYS = Keys("tc:")

_WORDS = """tide moon harbor sail anchor keel reef current wave shore pilot lagoon coral
estuary buoy compass lantern channel dune kelp drift mast gull heron pebble inlet river cove
hull pearl delta beacon rudder storm breeze salt foam ebb flood spring neap gravity orbit ocean
sea bay cliff rock sand island lighthouse fisher net boat ship crew deck cabin chart map route
star night day morning evening weather cloud rain wind fog north south east west port starboard
bow stern ballast cargo trade"""
_VOCAB = _WORDS.split()
_WEIGHTS = [1 / (i + 1) for i in range(len(_VOCAB))]


def text(rng: random.Random, chars: int) -> str:
    out: list[str] = []
    size = 0
    while size < chars:
        word = rng.choices(_VOCAB, _WEIGHTS)[0]
        out.append(word)
        size += len(word) + 1
    return " ".join(out)[:chars]


def chain(n: int, chars: int, seed: int = 1) -> dict[str, Any]:
    rng = random.Random(seed)
    t = time.time() - n
    messages: dict[str, Any] = {}
    parent = None
    for i in range(n):
        mid = f"m{i}"
        user = i % 2 == 0
        messages[mid] = {
            "id": mid,
            "parent_id": parent,
            "role": "user" if user else "assistant",
            "content": text(rng, chars),
            "finish_reason": None if user else "stop",
            "created_at": t + i,
        }
        parent = mid
    return {"title": f"{n} messages", "messages": messages, "current_id": parent}


# --- 1. turns on a long conversation ------------------------------------------------


async def ttft(ws_url: str, token: str, cid: str, turns: int) -> list[float]:
    """Seconds from sending a message to its first text, ``turns`` times."""
    out: list[float] = []
    async with websockets.connect(
        ws_url, additional_headers={"Authorization": f"Bearer {token}"}, max_size=2**25
    ) as conn:
        while json.loads(await conn.recv())["type"] != "hello":
            pass
        for i in range(turns):
            sent = time.perf_counter()
            frame = {"type": "message", "content": f"one more question {i}", "conversation_id": cid}
            await conn.send(json.dumps(frame))
            first = None
            while True:
                event = json.loads(await conn.recv())
                if first is None and event["type"] in ("stream_chunk", "stream_end"):
                    first = time.perf_counter() - sent
                if event["type"] in ("stream_end", "error"):
                    break
            assert first is not None
            out.append(first)
    return out


async def slowest_commands(url: str, top: int = 3) -> list[tuple[float, str]]:
    redis = make_redis(url)
    try:
        rows = await redis.slowlog_get(10_000)
    finally:
        await redis.aclose()
    found = []
    for row in rows:
        command = row["command"]
        if isinstance(command, bytes):
            command = command.decode(errors="replace")
        words = str(command).split()
        if words and words[0].upper() in ("SLOWLOG", "CONFIG"):
            continue  # the benchmark's own
        found.append((row["duration"] / 1000, " ".join(words[:2])))
    found.sort(reverse=True)
    return found[:top]


async def reset_slowlog(url: str) -> None:
    redis = make_redis(url)
    try:
        await redis.config_set("slowlog-log-slower-than", 0)
        await redis.config_set("slowlog-max-len", 100_000)
        await redis.slowlog_reset()
    finally:
        await redis.aclose()


def turns_table(base: str, redis_url: str, sizes: list[int], chars: int, turns: int) -> None:
    ws_url = base.replace("http", "ws") + "/ws"
    token = httpx.post(
        base + "/api/auth/signup", json={"username": f"bench{time.time_ns()}", "password": PASSWORD}
    ).json()["token"]
    http = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=300)
    short = http.post("/api/conversations/import", json=chain(2, chars, seed=2)).json()["id"]
    print("| | 2-message chat | " + " | ".join(f"{n:,}-message chat" for n in sizes) + " |")
    print("|---|---|" + "---|" * len(sizes))
    rows: dict[str, list[str]] = {
        "ttft": [],
        "slowest": [],
        "get": [],
        "import": [],
    }
    run_async(ttft(ws_url, token, short, 3))  # warm up
    run_async(reset_slowlog(redis_url))
    short_ttft = pct(run_async(ttft(ws_url, token, short, turns)), 50)
    short_slowest = run_async(slowest_commands(redis_url, 1))
    for n in sizes:
        body = json.dumps(chain(n, chars)).encode()
        started = time.perf_counter()
        r = http.post(
            "/api/conversations/import",
            content=body,
            headers={"content-type": "application/json"},
        )
        imported = time.perf_counter() - started
        r.raise_for_status()
        cid = r.json()["id"]
        started = time.perf_counter()
        page = http.get(f"/api/conversations/{cid}")
        got = time.perf_counter() - started
        run_async(reset_slowlog(redis_url))
        long_ttft = pct(run_async(ttft(ws_url, token, cid, turns)), 50)
        slowest = run_async(slowest_commands(redis_url, 1))
        rows["ttft"].append(
            f"{long_ttft * 1000:.1f} ms ({(long_ttft - short_ttft) * 1000:+.1f} ms)"
        )
        rows["slowest"].append(f"{slowest[0][0]:.2f} ms `{slowest[0][1]}`" if slowest else "-")
        rows["get"].append(
            f"{got * 1000:.0f} ms, {len(page.content) / 1024:.0f} KB "
            f"({len(page.json()['branch'])} messages)"
        )
        rows["import"].append(f"{imported:.2f} s ({len(body) / 1e6:.1f} MB)")
    short_cmd = f"{short_slowest[0][0]:.2f} ms `{short_slowest[0][1]}`" if short_slowest else "-"
    print(
        f"| time to first text (p50 of {turns}) | {short_ttft * 1000:.1f} ms | "
        + " | ".join(rows["ttft"])
        + " |"
    )
    print(
        f"| slowest Redis command during the turns | {short_cmd} | "
        + " | ".join(rows["slowest"])
        + " |"
    )
    print("| `GET /api/conversations/{id}` | - | " + " | ".join(rows["get"]) + " |")
    print("| import | - | " + " | ".join(rows["import"]) + " |")


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
            title=" ".join(rng.choices(_VOCAB, _WEIGHTS, k=4)),
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
            words = rng.sample(_VOCAB[:60], rng.choice([1, 2, 3]))
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
            f"{int(info['used_memory']) / 1e6:.0f} MB"
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


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes", default="10000,50000", help="conversation sizes, comma-separated"
    )
    parser.add_argument("--chars", type=int, default=600, help="characters per message")
    parser.add_argument("--turns", type=int, default=20, help="turns timed per conversation")
    parser.add_argument("--search-convs", type=int, default=2000)
    parser.add_argument("--search-per-conv", type=int, default=100)
    parser.add_argument("--search-chars", type=int, default=200, help="characters per message")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--skip", default="", help="parts to skip: turns,search,memory")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    skip = set(args.skip.split(","))
    biggest = max(sizes) + 10
    workdir, server, env = workspace(
        "tidechat-storage-",
        MODELS,
        TIDECHAT_IMPORT_MAX_MESSAGES=str(biggest),
        TIDECHAT_IMPORT_MAX_DEPTH=str(biggest),
        TIDECHAT_IMPORT_MAX_BYTES=str(max(sizes) * (args.chars + 200) + 1_000_000),
        TIDECHAT_MAX_CONCURRENT_TURNS="0",
        TIDECHAT_DAILY_TOKEN_BUDGET="0",
        TIDECHAT_QUOTA_MESSAGES="0",
        TIDECHAT_QUOTA_BYTES="0",
    )
    port = free_port()
    procs = []
    try:
        if "turns" not in skip:
            procs.append(
                spawn(
                    ["-m", "tidechat.cli", "gateway", "--port", str(port)], env, workdir / "gw.log"
                )
            )
            procs.append(spawn(["-m", "tidechat.cli", "worker"], env, workdir / "worker.log"))
            base = f"http://127.0.0.1:{port}"
            wait_http(base + "/health")
            wait_http(base + "/ready", timeout=60)
            turns_table(base, server.url, sizes, args.chars, args.turns)
            stop(procs)
            procs = []
            print()
        if "memory" not in skip:
            run_async(memory_bench(server.url, 10_000, args.chars))
            print()
        if "search" not in skip:
            run_async(
                search_bench(
                    server.url,
                    args.search_convs,
                    args.search_per_conv,
                    args.search_chars,
                    args.queries,
                )
            )
    finally:
        stop(procs)
        server.stop()
    print(f"logs: {workdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
