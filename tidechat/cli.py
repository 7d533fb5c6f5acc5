"""The ``tidechat`` command: one entry point for every process of the system."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import AsyncIterator, Coroutine, Sequence
from typing import TYPE_CHECKING, Any

from shared.models_file import ModelsFileError
from shared.redis_features import RedisFeatureError

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from worker.config import WorkerSettings


def _logging(level: str) -> None:
    from shared import log_redact

    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    log_redact.install()


def run_async(coro: Coroutine[Any, Any, None]) -> None:
    """Run on uvloop where it is installed (it comes with uvicorn[standard]):
    the worker's hot path is event-loop bound."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(coro)
    else:
        uvloop.run(coro)


def run_gateway(args: argparse.Namespace) -> int:
    from gateway.app import create_app
    from gateway.config import GatewaySettings
    from gateway.serve import serve, stall_guard

    settings = GatewaySettings()
    _logging(settings.log_level)
    app = create_app(settings)
    started = serve(
        app,
        host=args.host,
        port=args.port,
        log_level=settings.log_level,
        ws_ping_interval=20.0,
        ws_ping_timeout=20.0,
        timeout_graceful_shutdown=5,
        access_log=False,
        # The client address is tidechat's to work out (TIDECHAT_TRUSTED_PROXIES):
        # uvicorn would otherwise believe X-Forwarded-For from 127.0.0.1.
        proxy_headers=False,
        # A frame past this closes the socket with 1009 before it is buffered.
        ws_max_size=settings.max_request_bytes,
        # Frames are small JSON (a chunk is a few words): compressing each one
        # costs CPU on both ends and a zlib context per socket (tens of KB)
        # for little saved; history and exports travel over HTTP instead.
        ws_per_message_deflate=False,
        ws=stall_guard(settings.socket_write_timeout_seconds),
    )
    # uvicorn's own exit status when the app fails to start (its log says why,
    # e.g. a Redis without JSON or the query engine).
    return 0 if started else 3


@contextlib.asynccontextmanager
async def _worker_clients(
    settings: WorkerSettings, kind: str, connections: int, raw_connections: int
) -> AsyncIterator[tuple[Redis, Redis]]:
    """A worker process's Redis clients, once Redis has what tidechat needs:
    one for commands and blocking reads, and one that leaves replies as bytes
    (uploaded files, images for vision models)."""
    from shared.keys import WORKER_BLOCK_MS
    from shared.redis_client import make_redis
    from shared.redis_features import wait_for_features

    name = f"tidechat-{kind}-{os.getpid()}"
    redis = make_redis(
        settings.redis_url, block_ms=WORKER_BLOCK_MS, max_connections=connections, client_name=name
    )
    raw = make_redis(
        settings.redis_url,
        max_connections=raw_connections,
        client_name=name,
        decode_responses=False,
    )
    try:
        await wait_for_features(redis, settings.keys, logging.getLogger(kind))
        yield redis, raw
    finally:
        await raw.aclose()
        await redis.aclose()


def run_worker(args: argparse.Namespace) -> int:
    from worker.config import WorkerSettings
    from worker.worker import Worker

    overrides = {"concurrency": args.concurrency} if args.concurrency else {}
    settings = WorkerSettings(**overrides)
    _logging(settings.log_level)
    catalog = settings.load_models()

    async def main() -> None:
        async with _worker_clients(settings, "worker", settings.concurrency + 8, 4) as (r, raw):
            worker = Worker(
                r,
                settings,
                catalog,
                pools=args.pool or None,
                burst=args.burst,
                handle_signals=True,
                raw=raw,
            )
            await worker.run()

    run_async(main())
    return 0


def run_ingest(args: argparse.Namespace) -> int:
    from worker.config import WorkerSettings
    from worker.documents.embed import make_settings_embedder
    from worker.documents.pool import IngestWorker

    overrides = {"ingest_concurrency": args.concurrency} if args.concurrency else {}
    settings = WorkerSettings(**overrides)
    _logging(settings.log_level)
    n = settings.ingest_concurrency

    async def main() -> None:
        async with _worker_clients(settings, "ingest", n + 8, n + 1) as (redis, raw):
            embedder = make_settings_embedder(settings)
            worker = IngestWorker(
                redis, raw, settings, embedder, burst=args.burst, handle_signals=True
            )
            await worker.run()

    run_async(main())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tidechat",
        description="Self-hosted chat over Redis Streams. Reads REDIS_URL and TIDECHAT_MODELS.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    gw = sub.add_parser("gateway", help="run the WebSocket/HTTP gateway")
    gw.add_argument("--host", default="127.0.0.1")
    gw.add_argument("--port", type=int, default=8000)
    gw.set_defaults(func=run_gateway)

    wk = sub.add_parser("worker", help="run an inference worker")
    wk.add_argument(
        "--pool",
        action="append",
        help="pool to serve (repeatable; default: every pool in the models file)",
    )
    wk.add_argument("--concurrency", type=int, default=None, help="turns at once (default 4)")
    wk.add_argument(
        "--burst", action="store_true", help="exit when the queues are empty and nothing runs"
    )
    wk.set_defaults(func=run_worker)

    ig = sub.add_parser("ingest", help="run an ingestion worker (reads and indexes files)")
    ig.add_argument("--concurrency", type=int, default=None, help="files at once (default 1)")
    ig.add_argument(
        "--burst", action="store_true", help="exit when the stream is empty and nothing runs"
    )
    ig.set_defaults(func=run_ingest)

    from tidechat import up

    up.add_parser(sub)
    _ops_commands(sub)
    return parser


def _ops_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``replay``, ``turn``, ``streams``, ``dead`` and ``migrate``: the operator
    commands (tidechat/ops.py)."""
    from tidechat import migrate, queues, replay, timeline, turn_info
    from tidechat.ops import Command, run

    def command(parser: argparse.ArgumentParser, impl: Command) -> None:
        parser.set_defaults(func=lambda args: run(impl, args))

    rp = sub.add_parser("replay", help="replay a session's events or a recorded turn")
    rsub = rp.add_subparsers(dest="replay_command", required=True)

    rs = rsub.add_parser(
        "session",
        help="print a session stream's timeline",
        description="One line per event: local time, +seconds since the previous event, "
        "event id, type, turn (short id), size of the event JSON, and its text.",
    )
    rs.add_argument("session_id", metavar="SID")
    rs.add_argument(
        "--from",
        dest="from_id",
        metavar="EVENT_ID",
        help="start at this event id (or Unix ms time); earlier events are skipped",
    )
    rs.add_argument("--follow", "-f", action="store_true", help="keep printing new events")
    rs.add_argument("--full", action="store_true", help="do not cut long texts")
    rs.add_argument("--json", action="store_true", help="one frame per line, as clients get it")
    command(rs, timeline.replay_session)

    rt = rsub.add_parser(
        "turn",
        help="re-run a recorded turn on the current workers and compare",
        description="Finds the turn on the prompt (or dead-letter) streams, re-runs its prompt "
        "in a throw-away copy of the conversation (the user's conversation is not touched), "
        "waits for the reply and prints it beside the recorded one.",
    )
    rt.add_argument("turn_id", metavar="TURN_ID", help="a turn id (or its first 6+ characters)")
    rt.add_argument("--model", help="replay on this model instead of the recorded one")
    rt.add_argument(
        "--timeout", type=float, default=120.0, help="seconds to wait for the reply (default 120)"
    )
    rt.add_argument(
        "--keep",
        type=int,
        default=3600,
        metavar="SECONDS",
        help="how long the replay's conversation copy and session live (default 3600)",
    )
    rt.add_argument(
        "--side-by-side", action="store_true", help="print the two texts in two columns"
    )
    command(rt, replay.replay_turn)

    tn = sub.add_parser(
        "turn",
        help="one turn: its conversation, session, where it is now, and how to look further",
        description="TURN_ID is what a reply's menu in the web client copies (Copy turn ID).",
    )
    tn.add_argument("turn_id", metavar="TURN_ID", help="a turn id (or its first 6+ characters)")
    tn.add_argument("--json", action="store_true", help="machine-readable output")
    command(tn, turn_info.show_turn)

    st = sub.add_parser(
        "streams",
        help="each pool's queue, pending turns per worker, live workers, dead letters",
    )
    st.add_argument("--json", action="store_true", help="machine-readable output")
    st.add_argument(
        "--dead", type=int, default=3, metavar="N", help="newest dead letters shown per pool"
    )
    command(st, queues.streams)

    mg = sub.add_parser(
        "migrate",
        help="bring the data in Redis to this release's layout (stop gateways and workers first)",
        description="Converts the previous release's data in batches, with progress; safe to "
        "run again after a crash (it resumes) or when there is nothing to do.",
    )
    command(mg, migrate.migrate)

    dp = sub.add_parser("dead", help="list or retry turns that failed past the retry limit")
    dsub = dp.add_subparsers(dest="dead_command", required=True)
    dl = dsub.add_parser("list", help="the dead letters, newest first")
    dl.add_argument("--pool", help="only this pool")
    dl.add_argument("--json", action="store_true", help="machine-readable output")
    command(dl, queues.dead_list)
    dr = dsub.add_parser("retry", help="queue a dead letter's turn again")
    dr.add_argument("entry_id", metavar="ID", help="the dead letter's entry id (dead list)")
    dr.add_argument("--pool", help="the pool it is in (default: look in every pool)")
    command(dr, queues.dead_retry)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (ModelsFileError, RedisFeatureError) as exc:
        print(f"tidechat: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
