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
import json
import sys
import time

import httpx
import websockets

from bench.harness import load_average, pct, run_async, spawn, stop, wait_http, workspace
from bench.storage_search import memory_bench, search_bench
from bench.storage_text import chain
from shared.redis_client import make_redis
from tidechat.local_redis import free_port

MODELS = """
[[models]]
id = "scripted"
backend = "scripted"
reply_tokens = 16
tokens_per_second = 0
"""
PASSWORD = "benchmark pw"

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
    print(f"(machine {load_average()})")


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
