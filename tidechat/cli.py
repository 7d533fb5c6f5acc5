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
    from tidechat import ops_cli

    ops_cli.add_parsers(sub)
    return parser


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
