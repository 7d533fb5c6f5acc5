"""Live-sync fan-out: what a user's other tabs cost Redis, and how soon they
see a turn (issue 16).

One user, one conversation, turns sent one after another from tab A on
gateway 0; 0, 1 or 3 more tabs of the same user watch the conversation,
spread over gateway 1 and gateway 0. For each setting: Redis commands per turn
(INFO commandstats before/after; the commands inside scripts count),
stream entries written per turn (XADD, by kind), and the delay between A's
echo of its question and each other tab's copy of it (p50/p99).

    python -m bench.fanout                  # 40 turns per setting
    python -m bench.fanout --turns 100

To compare with another version, run its gateways and worker from its source
tree (`git archive main | tar -x -C /tmp/main`), from a directory that is
neither tree (``python -m`` puts the working directory first on the path):

    cd /tmp && PYTHONPATH=$REPO python -m bench.fanout --watchers 0 --code /tmp/main

The chunks of a reply are written once, by the worker, whatever the number
of tabs: a watching tab's gateway reads them from the session stream with the
XREAD it makes anyway. With ``--code`` of a version without live sync, only
the 0-tab setting means anything (the others watch nothing).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

import httpx
import redis as redis_sync
import websockets
from websockets.asyncio.client import ClientConnection

from bench.harness import pct, run_async, spawn, stop, wait_http, workspace
from bench.pipeline import command_calls
from tidechat.local_redis import free_port

MODELS = """
[[models]]
id = "scripted"
backend = "scripted"
reply_tokens = 64
tokens_per_second = 400
"""


async def _open(url: str, token: str) -> ClientConnection:
    ws = await websockets.connect(url, additional_headers={"Authorization": f"Bearer {token}"})
    assert json.loads(await ws.recv())["type"] == "hello"
    await ws.send(json.dumps({"type": "ping"}))
    while json.loads(await ws.recv())["type"] != "pong":
        pass
    return ws


async def _until(ws: ClientConnection, kind: str, turn_id: str | None = None) -> float:
    while True:
        frame = json.loads(await ws.recv())
        if frame["type"] == kind and (turn_id is None or frame.get("turn_id") == turn_id):
            return time.monotonic()


async def run_setting(
    urls: list[str], token: str, watchers: int, turns: int, r: redis_sync.Redis
) -> dict[str, object]:
    a = await _open(urls[0], token)
    await a.send(json.dumps({"type": "message", "content": "start", "model": "scripted"}))
    cid = ""
    while not cid:
        frame = json.loads(await a.recv())
        if frame["type"] == "stream_end":
            cid = frame["conversation_id"]
    others = [await _open(urls[(i + 1) % len(urls)], token) for i in range(watchers)]
    for ws in others:
        await ws.send(json.dumps({"type": "watch", "conversation_id": cid}))
        await ws.send(json.dumps({"type": "ping"}))
        await _until(ws, "pong")
    delays: list[float] = []
    before = command_calls(r)
    xadds_before = _xadds(r)
    for i in range(turns):
        await a.send(
            json.dumps({"type": "message", "content": f"turn {i}", "conversation_id": cid})
        )
        while True:
            frame = json.loads(await a.recv())
            if frame["type"] == "user_message":
                echoed, turn_id = time.monotonic(), frame["turn_id"]
                break
        seen = await asyncio.gather(*(_until(ws, "user_message", turn_id) for ws in others))
        delays += [t - echoed for t in seen]
        await _until(a, "stream_end", turn_id)
        await asyncio.gather(*(_until(ws, "stream_end", turn_id) for ws in others))
    after = command_calls(r)
    xadds = _xadds(r) - xadds_before
    for ws in [a, *others]:
        await ws.close()
    per_command = {k: after[k] - before.get(k, 0) for k in after if after[k] - before.get(k, 0)}
    return {
        "watching tabs": watchers,
        "commands/turn": round(sum(per_command.values()) / turns, 1),
        "XADD/turn": round(xadds / turns, 1),
        "XREAD/turn": round(per_command.get("xread", 0) / turns, 1),
        "seen after echo p50 ms": round(pct(delays, 50) * 1000, 1) if delays else None,
        "p99 ms": round(pct(delays, 99) * 1000, 1) if delays else None,
        "mix": {
            k: round(v / turns, 2) for k, v in sorted(per_command.items(), key=lambda kv: -kv[1])
        },
    }


def _xadds(r: redis_sync.Redis) -> int:
    return int(r.info("commandstats").get("cmdstat_xadd", {}).get("calls", 0))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--turns", type=int, default=40)
    parser.add_argument("--watchers", type=int, nargs="*", default=[0, 1, 3])
    parser.add_argument("--code", type=Path, help="run the services from this source tree")
    args = parser.parse_args()
    workdir, server, env = workspace("tc-fanout-", MODELS)
    if args.code is not None:
        env["PYTHONPATH"] = str(args.code.resolve())
    procs = []
    try:
        ports = [free_port(), free_port()]
        for i, port in enumerate(ports):
            procs.append(
                spawn(
                    ["-m", "tidechat.cli", "gateway", "--port", str(port)],
                    env,
                    workdir / f"gateway-{i}.log",
                )
            )
        procs.append(spawn(["-m", "tidechat.cli", "worker"], env, workdir / "worker.log"))
        for port in ports:
            wait_http(f"http://127.0.0.1:{port}/ready")
        r = redis_sync.Redis.from_url(server.url, decode_responses=True)
        token = httpx.post(
            f"http://127.0.0.1:{ports[0]}/api/auth/signup",
            json={"username": f"fan{os.getpid()}", "password": "benchmark pw"},
        ).json()["token"]
        urls = [f"ws://127.0.0.1:{port}/ws" for port in ports]
        for watchers in args.watchers:
            result = run_async(run_setting(urls, token, watchers, args.turns, r))
            print(json.dumps(result), flush=True)
    finally:
        stop(procs)
        server.stop()
    print(f"(logs in {workdir})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
