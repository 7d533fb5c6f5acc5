"""Isolation benchmark (issue 18): what one hostile account costs everyone else.

    python -m bench.isolation                     # defaults below
    python -m bench.isolation --deaf 60 --resumes 20 --queued 30

Runs one gateway and one worker (concurrency 2) on a Redis of its own, with
two scripted models in one pool: "fast" (answers at once) and "slow" (about
a second a reply). Two attacks, each measured against a bystander user in
the same run:

- the socket attack: the attacker fills a session with long messages, then
  opens ``--deaf`` sockets on it that never read and sends ``--resumes``
  ``resume`` frames (from the start) and pings on each, one every ``--pace``
  seconds. Printed: the
  gateway's RSS before and at its peak, whether and when the deaf sockets
  were dropped, and the bystander's turn latency before and during;
- the queue attack: the attacker queues ``--queued`` slow turns at once;
  printed: the bystander's time to first token (fast model) before and
  during, and how many of the attacker's turns finished meanwhile.

Only the ratios inside one run mean much on a shared machine. The script
runs against any checkout (settings it does not know are ignored), so the
same command measures the code before and after a change.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from typing import Any

import httpx
import websockets

from bench.deaf import DeafSocket
from bench.harness import rss_mb, run_async, spawn, stop, wait_http, workspace
from tidechat.local_redis import free_port

MODELS = """
[[models]]
id = "fast"
backend = "scripted"
reply_tokens = 16
tokens_per_second = 0

[[models]]
id = "slow"
backend = "scripted"
reply_tokens = 10
tokens_per_second = 10
"""

METRICS_TOKEN = "isolation-bench"
PASSWORD = "benchmark pw"


class Client:
    """A reading WebSocket client that keeps every frame with its arrival time."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.frames: list[tuple[float, dict[str, Any]]] = []
        self.changed = asyncio.Event()
        self.task = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, ws_url: str, token: str, session: str | None = None) -> Client:
        url = ws_url + (f"?session={session}" if session else "")
        conn = await websockets.connect(
            url, additional_headers={"Authorization": f"Bearer {token}"}, max_size=2**25
        )
        client = cls(conn)
        await client.wait(lambda f: f["type"] == "hello")
        return client

    async def _read(self) -> None:
        try:
            async for raw in self.conn:
                self.frames.append((time.monotonic(), json.loads(raw)))
                self.changed.set()
        except websockets.ConnectionClosed:
            pass

    async def wait(self, match: Any, start: int = 0, within: float = 120) -> tuple[float, Any]:
        async with asyncio.timeout(within):
            while True:
                for at, frame in self.frames[start:]:
                    if match(frame):
                        return at, frame
                self.changed.clear()
                await self.changed.wait()

    async def turn(self, content: str, model: str, cid: str | None = None) -> dict[str, float]:
        """Send a message; seconds to the first text and to the end of the reply."""
        start = len(self.frames)
        sent = time.monotonic()
        await self.conn.send(
            json.dumps(
                {"type": "message", "content": content, "model": model, "conversation_id": cid}
            )
        )
        first, _ = await self.wait(
            lambda f: f["type"] in ("stream_chunk", "stream_end", "error"), start
        )
        end, frame = await self.wait(lambda f: f["type"] in ("stream_end", "error"), start)
        return {"first": first - sent, "end": end - sent, "cid": frame.get("conversation_id")}

    def count(self, *types: str) -> int:
        return sum(1 for _, f in self.frames if f["type"] in types)

    def ended(self) -> int:
        return self.count("stream_end")

    async def close(self) -> None:
        await self.conn.close()
        self.task.cancel()


def signup(base: str, name: str) -> str:
    r = httpx.post(base + "/api/auth/signup", json={"username": name, "password": PASSWORD})
    r.raise_for_status()
    return str(r.json()["token"])


async def sockets_open(base: str) -> int:
    headers = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=10) as http:
        text = (await http.get("/metrics")).text
    line = next(x for x in text.splitlines() if x.startswith("tidechat_gateway_sockets "))
    return int(float(line.split()[1]))


async def bystander_turns(client: Client, count: int, stop_at: float | None = None) -> list[float]:
    out = []
    cid = None
    for i in range(count):
        result = await client.turn(f"bystander question {i}", "fast", cid)
        cid = str(result["cid"])
        out.append(result["end"])
        if stop_at is not None and time.monotonic() > stop_at:
            break
    return out


async def socket_attack(base: str, args: argparse.Namespace, gateway_pid: int) -> None:
    ws_url = base.replace("http", "ws") + "/ws"
    attacker = signup(base, f"deafattacker{time.time_ns()}")
    session = f"deafsession{time.time_ns()}"
    filler = await Client.open(ws_url, attacker, session)
    text = "tide " * (args.message_kb * 200)
    cid = None
    for i in range(args.session_turns):
        cid = str((await filler.turn(f"{i} {text}", "fast", cid))["cid"])
    events = sum(1 for _, f in filler.frames if "event_id" in f)
    await filler.close()

    bystander = await Client.open(ws_url, signup(base, f"bystander{time.time_ns()}"))
    quiet = await bystander_turns(bystander, 20)
    before = rss_mb(gateway_pid)
    sockets_before = await sockets_open(base)

    attack_start = time.monotonic()
    deaf = [DeafSocket(ws_url, attacker, session) for _ in range(args.deaf)]
    # Paced, so each resume is read on its own: sent all at once, the resumes
    # of many sockets are served by one read whose events they share.
    for _ in range(args.resumes):
        for d in deaf:
            try:
                d.send({"type": "resume", "after": "0-0"})
                d.send({"type": "ping"})
            except OSError:
                pass  # dropped already
            await asyncio.sleep(args.pace)
    sent_s = time.monotonic() - attack_start
    peak = before
    loud: list[float] = []
    dropped_at: float | None = None
    deadline = attack_start + args.observe
    while time.monotonic() < deadline:
        loud += await bystander_turns(bystander, 1)
        peak = max(peak, rss_mb(gateway_pid))
        if dropped_at is None and await sockets_open(base) <= sockets_before:
            dropped_at = time.monotonic() - attack_start
        if dropped_at is not None and len(loud) >= 20:
            break
        await asyncio.sleep(0.2)
    for d in deaf:
        d.close()
    await bystander.close()

    print(
        f"socket attack: {args.deaf} sockets that never read x {args.resumes} resumes "
        f"(+ pings) of a {events}-event session (~{args.session_turns * args.message_kb} KB of "
        f"messages), sent in {sent_s:.1f} s"
    )
    print(
        f"  gateway RSS: {before:.0f} MB before, {peak:.0f} MB at peak "
        f"(+{peak - before:.0f} MB, x{peak / before:.2f})"
    )
    if dropped_at is None:
        print(f"  deaf sockets: still open after {args.observe:.0f} s")
    else:
        print(f"  deaf sockets: all dropped {dropped_at:.1f} s after the attack began")
    print(
        f"  bystander turn (fast model): median {statistics.median(quiet) * 1000:.0f} ms quiet, "
        f"{statistics.median(loud) * 1000:.0f} ms under attack (worst {max(loud) * 1000:.0f} ms; "
        f"x{statistics.median(loud) / statistics.median(quiet):.1f})"
    )


async def queue_attack(base: str, args: argparse.Namespace) -> None:
    ws_url = base.replace("http", "ws") + "/ws"
    bystander = await Client.open(ws_url, signup(base, f"qbystander{time.time_ns()}"))
    quiet = [(await bystander.turn("quiet question", "fast"))["first"] for _ in range(5)]
    attacker = await Client.open(ws_url, signup(base, f"qattacker{time.time_ns()}"))
    one_slow = (await attacker.turn("how long is one slow turn?", "slow"))["end"]
    started = attacker.ended()
    for i in range(args.queued):
        await attacker.conn.send(
            json.dumps({"type": "message", "content": f"slow {i}", "model": "slow"})
        )
    # Every turn of the attacker's is accepted (queued) before the bystander asks.
    async with asyncio.timeout(60):
        while attacker.count("user_message", "error") < args.queued + 1:
            attacker.changed.clear()
            await attacker.changed.wait()
    loud = await bystander.turn("my question, during the queue", "fast")
    finished = attacker.ended() - started
    refused = sum(1 for _, f in attacker.frames if f.get("code") == "busy")
    await bystander.close()
    await attacker.close()
    print(
        f"queue attack: {args.queued} slow turns queued at once by one user "
        f"({refused} refused busy); one slow turn takes {one_slow:.2f} s"
    )
    print(
        f"  bystander's time to first token (fast model): {statistics.median(quiet) * 1000:.0f} "
        f"ms quiet, {loud['first'] * 1000:.0f} ms behind the queue "
        f"(= {loud['first'] / one_slow:.1f} slow turns); {finished} of the attacker's turns "
        f"finished meanwhile"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--deaf", type=int, default=60, help="sockets that never read")
    parser.add_argument("--resumes", type=int, default=20, help="resume frames per deaf socket")
    parser.add_argument("--session-turns", type=int, default=100)
    parser.add_argument("--message-kb", type=int, default=10, help="size of each filler message")
    parser.add_argument("--pace", type=float, default=0.02, help="seconds between resumes")
    parser.add_argument("--observe", type=float, default=90.0, help="seconds to watch the attack")
    parser.add_argument("--queued", type=int, default=30, help="slow turns the attacker queues")
    args = parser.parse_args()

    workdir, server, env = workspace(
        "tidechat-isolation-",
        MODELS,
        TIDECHAT_METRICS_TOKEN=METRICS_TOKEN,
        # The queue attack is about fairness, not the per-user waiting cap.
        TIDECHAT_MAX_WAITING_TURNS_PER_USER=str(args.queued + 10),
    )
    port = free_port()
    gw = spawn(["-m", "tidechat.cli", "gateway", "--port", str(port)], env, workdir / "gw.log")
    worker = spawn(
        ["-m", "tidechat.cli", "worker", "--concurrency", "2"], env, workdir / "worker.log"
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(base + "/health")
        wait_http(base + "/ready", timeout=60)
        run_async(socket_attack(base, args, gw.pid))
        print()
        run_async(queue_attack(base, args))
    finally:
        stop([gw, worker])
        server.stop()
    print(f"logs: {workdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
