"""Pipeline benchmark: tidechat (gateway -> Redis -> 2 workers) against the
"direct" baseline (the gateway process calls the model itself), in one run,
on the same machine, with the same scripted backend (64-token replies, as
fast as it can) and the same load generator.

    python -m bench.pipeline                 # defaults: 100 clients, 10 s a phase
    python -m bench.pipeline --clients 100 --seconds 15

Prints, per mode: turns/s, time to first token at the client (p50/p99: the
first frame with reply text, a stream_chunk or, for a reply generated within
one coalescing window, the stream_end that carries all of it) and
what tidechat adds over direct, Redis commands per turn (INFO commandstats
before/after), the gateway's RSS and its Redis connections. The load
generator shares the machine's cores with everything it measures, so it is
kept cheap (it parses only the frames it must) and the figures that matter
are the ratios between modes of the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from dataclasses import dataclass, field

import httpx
import redis as redis_sync
import websockets

from bench.harness import cpu_seconds, pct, rss_mb, run_async, spawn, stop, wait_http, workspace
from tidechat.local_redis import free_port

MODELS = """
[[models]]
id = "scripted"
backend = "scripted"
reply_tokens = 64
tokens_per_second = 0
"""

#: A client starts a new conversation after this many turns, so histories
#: stay the size of a real chat rather than growing through the whole run.
TURNS_PER_CONVERSATION = 10


@dataclass
class ClientStats:
    turns: int = 0
    ttft: list[float] = field(default_factory=list)
    latency: list[float] = field(default_factory=list)
    errors: int = 0


async def client_loop(
    url: str, token: str, stats: ClientStats, stop_at: float, measure_from: float
) -> None:
    async with websockets.connect(
        url,
        additional_headers={"Authorization": f"Bearer {token}"},
        max_size=2**24,
        compression=None,
    ) as ws:
        await ws.recv()  # hello
        cid: str | None = None
        n = 0
        while time.monotonic() < stop_at:
            if n % TURNS_PER_CONVERSATION == 0:
                cid = None
            frame = {
                "type": "message",
                "content": f"question {n} about the tides",
                "conversation_id": cid,
            }
            sent = time.monotonic()
            await ws.send(json.dumps(frame))
            first: float | None = None
            try:
                async with asyncio.timeout(30):
                    while True:
                        received = await ws.recv()
                        raw = received if isinstance(received, str) else received.decode()
                        # Cheap routing: frames are told apart by their head,
                        # and only the conversation id is read out of stream_end.
                        head = raw[:80]
                        if first is None and '"type":"stream_chunk"' in head:
                            first = time.monotonic()
                        elif '"type":"stream_end"' in head:
                            # A reply generated within one coalescing window
                            # comes whole in stream_end: that is its first text.
                            first = first or time.monotonic()
                            at = raw.index('"conversation_id":"') + 19
                            cid = raw[at : raw.index('"', at)]
                            break
                        elif '"type":"error"' in head:
                            stats.errors += 1
                            break
            except TimeoutError:
                stats.errors += 1
                print("a turn got no stream_end within 30 s", file=sys.stderr)
            done = time.monotonic()
            n += 1
            if sent >= measure_from and first is not None:
                stats.turns += 1
                stats.ttft.append(first - sent)
                stats.latency.append(done - sent)


def command_calls(r: redis_sync.Redis) -> dict[str, int]:
    """Calls per command so far, without the benchmark's own INFO/CLIENT LIST."""
    stats = r.info("commandstats")
    return {
        k.removeprefix("cmdstat_"): int(v["calls"])
        for k, v in stats.items()
        if not k.endswith(("info", "client|list"))
    }


def gateway_connections(r: redis_sync.Redis) -> int:
    return sum(1 for c in r.client_list() if str(c.get("name", "")).startswith("tidechat-gateway-"))


@dataclass
class Result:
    mode: str
    clients: int
    turns_per_s: float
    ttft_p50_ms: float
    ttft_p99_ms: float
    latency_p50_ms: float
    commands_per_turn: float
    gateway_rss_mb: float
    gateway_redis_connections: int
    errors: int


def run_phase(
    mode: str,
    base: str,
    ws_url: str,
    r: redis_sync.Redis,
    gateway_pid: int,
    clients: int,
    seconds: float,
    warmup: float,
    cpu_pids: dict[str, list[int]],
) -> Result:
    tokens = []
    with httpx.Client(base_url=base, timeout=30) as http:
        for i in range(min(clients, 20)):
            name = f"{mode}{clients}u{i}{os.getpid()}"
            resp = http.post(
                "/api/auth/signup", json={"username": name, "password": "benchmark pw"}
            )
            resp.raise_for_status()
            tokens.append(resp.json()["token"])
    stats = [ClientStats() for _ in range(clients)]
    cpu_used: dict[str, float] = {}
    print(
        f"[{mode}] {clients} client(s), {warmup:.0f} s warm-up + {seconds:.0f} s",
        file=sys.stderr,
        flush=True,
    )

    async def main() -> tuple[dict[str, int], int]:
        start = time.monotonic()
        measure_from = start + warmup
        stop_at = measure_from + seconds
        loop_tasks = [
            asyncio.create_task(
                client_loop(ws_url, tokens[i % len(tokens)], stats[i], stop_at, measure_from)
            )
            for i in range(clients)
        ]
        await asyncio.sleep(max(0.0, measure_from - time.monotonic()))
        before = command_calls(r)
        cpu_before = {k: sum(cpu_seconds(p) for p in pids) for k, pids in cpu_pids.items()}
        cpu_before["load generator"] = cpu_seconds(os.getpid())
        await asyncio.sleep(max(0.0, stop_at - time.monotonic()))
        after = command_calls(r)
        cpu_used.update(
            {k: sum(cpu_seconds(p) for p in pids) - cpu_before[k] for k, pids in cpu_pids.items()}
        )
        cpu_used["load generator"] = cpu_seconds(os.getpid()) - cpu_before["load generator"]
        conns = gateway_connections(r)
        await asyncio.gather(*loop_tasks)
        return {k: after[k] - before.get(k, 0) for k in after if after[k] - before.get(k, 0)}, conns

    per_command, conns = run_async(main())
    commands = sum(per_command.values())
    turns = sum(s.turns for s in stats)
    if turns:
        cpu = ", ".join(f"{k} {v / turns * 1000:.2f} ms" for k, v in cpu_used.items())
        print(f"[{mode}] CPU per turn: {cpu}", file=sys.stderr, flush=True)
        mix = ", ".join(
            f"{k} {v / turns:.2f}" for k, v in sorted(per_command.items(), key=lambda kv: -kv[1])
        )
        print(f"[{mode}] commands per turn by kind: {mix}", file=sys.stderr, flush=True)
    ttft = [t for s in stats for t in s.ttft]
    lat = [t for s in stats for t in s.latency]
    return Result(
        mode=mode,
        clients=clients,
        turns_per_s=turns / seconds,
        ttft_p50_ms=pct(ttft, 50) * 1000,
        ttft_p99_ms=pct(ttft, 99) * 1000,
        latency_p50_ms=pct(lat, 50) * 1000,
        commands_per_turn=commands / turns if turns else float("nan"),
        gateway_rss_mb=rss_mb(gateway_pid),
        gateway_redis_connections=conns,
        errors=sum(s.errors for s in stats),
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--worker-concurrency", type=int, default=64)
    args = parser.parse_args()

    workdir, server, env = workspace(
        "tidechat-bench-",
        MODELS,
        # Per-user limits off (their script still runs and counts usage: its
        # cost is measured; only the refusals would get in the way).
        TIDECHAT_MAX_CONCURRENT_TURNS="0",
        TIDECHAT_DAILY_TOKEN_BUDGET="0",
        TIDECHAT_SIGNIN_ATTEMPTS_PER_ADDRESS="100000",
        TIDECHAT_MAX_QUEUED_TURNS="100000",
        # The clients share 20 accounts (sign-up hashes are slow); each stands
        # for a user of their own, whose turns all go straight to the stream.
        TIDECHAT_FAIR_TURNS_PER_USER=str(args.clients),
        TIDECHAT_MAX_WAITING_TURNS_PER_USER=str(args.clients),
    )
    r = redis_sync.Redis.from_url(server.url, decode_responses=True)
    results: list[Result] = []
    try:
        # tidechat: gateway + 2 workers
        port = free_port()
        gw = spawn(
            ["-m", "tidechat.cli", "gateway", "--port", str(port)], env, workdir / "gateway.log"
        )
        workers = [
            spawn(
                ["-m", "tidechat.cli", "worker", "--concurrency", str(args.worker_concurrency)],
                env,
                workdir / f"worker{i}.log",
            )
            for i in range(2)
        ]
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/ready")
        redis_pid = server.process.pid if server.process else 0
        pids = {"gateway": [gw.pid], "workers": [w.pid for w in workers], "redis": [redis_pid]}
        for clients in (1, args.clients):
            results.append(
                run_phase(
                    "tidechat",
                    base,
                    base.replace("http", "ws") + "/ws",
                    r,
                    gw.pid,
                    clients,
                    args.seconds,
                    args.warmup,
                    pids,
                )
            )
        stop([gw, *workers])
        r.flushall()
        # direct: the gateway process runs the backend itself
        port = free_port()
        direct = spawn(
            ["-m", "bench.direct_server", "--port", str(port)], env, workdir / "direct.log"
        )
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/docs")
        pids = {"gateway": [direct.pid], "redis": [redis_pid]}
        for clients in (1, args.clients):
            results.append(
                run_phase(
                    "direct",
                    base,
                    base.replace("http", "ws") + "/ws",
                    r,
                    direct.pid,
                    clients,
                    args.seconds,
                    args.warmup,
                    pids,
                )
            )
        stop([direct])
    finally:
        server.stop()

    header = (
        f"{'mode':<9} {'clients':>7} {'turns/s':>8} {'ttft p50':>9} {'ttft p99':>9} "
        f"{'turn p50':>9} {'cmds/turn':>9} {'gw RSS':>8} {'gw conns':>8} {'errors':>6}"
    )
    print(header)
    print("-" * len(header))
    for res in results:
        print(
            f"{res.mode:<9} {res.clients:>7} {res.turns_per_s:>8.1f} {res.ttft_p50_ms:>7.2f}ms "
            f"{res.ttft_p99_ms:>7.2f}ms {res.latency_p50_ms:>7.2f}ms {res.commands_per_turn:>9.1f} "
            f"{res.gateway_rss_mb:>6.0f}MB {res.gateway_redis_connections:>8} {res.errors:>6}"
        )
    by = {(x.mode, x.clients): x for x in results}
    t1, tn = by[("tidechat", 1)], by[("tidechat", args.clients)]
    d1, dn = by[("direct", 1)], by[("direct", args.clients)]
    print()
    n = args.clients
    ratio = tn.turns_per_s / dn.turns_per_s
    print(
        f"turns/s at {n} clients: tidechat {tn.turns_per_s:.0f} vs direct {dn.turns_per_s:.0f} "
        f"(ratio {ratio:.2f}; targets: >= 1.0 and >= 500/s)"
    )
    added = t1.ttft_p50_ms - d1.ttft_p50_ms
    print(f"added TTFT over direct, 1 client, p50: {added:+.2f} ms (target <= 2 ms)")
    print(
        f"TTFT p99 at {n} clients: tidechat {tn.ttft_p99_ms:.1f} ms, "
        f"direct {dn.ttft_p99_ms:.1f} ms, "
        f"added {tn.ttft_p99_ms - dn.ttft_p99_ms:+.1f} ms (target <= 15 ms)"
    )
    print(f"Redis commands per 64-token turn: {tn.commands_per_turn:.1f} (target <= 16)")
    print(f"logs: {workdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
