"""Liveness, readiness and Prometheus metrics.

What an operator needs (workers by host and pid, queue depths, socket
counts) is also what an attacker would like to see: ``/ready`` tells an
anonymous caller only whether the gateway is ready and, if not, why; the
details, and ``/metrics`` when ``TIDECHAT_METRICS_TOKEN`` is set, need that
token as a bearer.
"""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from redis.exceptions import RedisError

from gateway.deps import ServicesDep
from gateway.errors import ApiError
from gateway.metrics import render_metrics
from shared.keys import INGEST_POOL
from shared.queue_status import live_workers, pending_by_consumer, pool_stats
from shared.redis_features import JSON, QUERY_ENGINE, explain, missing_features

router = APIRouter()


@router.get("/health")
async def health() -> dict[str, str]:
    """The process is alive (no dependency is checked)."""
    return {"status": "ok"}


def is_operator(request: Request, services: ServicesDep) -> bool:
    """The request bears the metrics token (none is configured: nobody does)."""
    token = services.settings.metrics_token
    if token is None:
        return False
    scheme, _, presented = (request.headers.get("authorization") or "").partition(" ")
    expected = token.get_secret_value().encode()
    return scheme.lower() == "bearer" and hmac.compare_digest(presented.encode(), expected)


@router.get("/ready")
async def ready(request: Request, services: ServicesDep) -> JSONResponse:
    """Ready to chat: Redis reachable with JSON and the query engine, a live
    worker per pool, the session reader running. Anonymous callers get
    ``ready`` and, when not, the reasons (a missing Redis feature names what
    to install), and whether live ingestion workers read uploaded files
    (``ingestion``: reported, not required, since chat works without them);
    with the metrics token, every figure."""
    checks, ok = await _checks(services)
    status = 200 if ok else 503
    if is_operator(request, services):
        return JSONResponse({"ready": ok, **checks}, status_code=status)
    body = {"ready": ok, "reasons": _reasons(checks), "ingestion": _ingestion(checks)}
    return JSONResponse(body, status_code=status)


def _ingestion(checks: dict[str, Any]) -> str:
    """Whether uploaded files get read: ``ok``, or why not (no host or count)."""
    if "ingestion" not in checks:
        return "unknown"
    return "ok" if checks["ingestion"]["live_workers"] else "no live ingestion worker"


def _reasons(checks: dict[str, Any]) -> list[str]:
    """Why the gateway is not ready, in words that name no host, pid or count."""
    reasons = []
    if checks.get("redis") != "ok":
        reasons.append("storage unreachable")
    elif checks.get("reason"):
        reasons.append(str(checks["reason"]))
    for pool, stats in checks.get("pools", {}).items():
        if not stats.get("live_workers"):
            reasons.append(f"no live worker for pool {pool}")
    if checks.get("reader") != "ok":
        reasons.append("session reader not running")
    return reasons


async def _checks(services: ServicesDep) -> tuple[dict[str, Any], bool]:
    checks: dict[str, Any] = {}
    ok = True
    try:
        await services.redis.ping()
        checks["redis"] = "ok"
        missing = await missing_features(services.redis, services.settings.keys)
        checks["json_module"] = "missing" if JSON in missing else "ok"
        checks["query_engine"] = "missing" if QUERY_ENGINE in missing else "ok"
        if missing:
            checks["reason"] = explain(missing)
            ok = False
        pools: dict[str, Any] = {}
        for pool in services.catalog.pools():
            live = len(await live_workers(services.redis, services.settings.keys, pool))
            stats = await pool_stats(services.redis, services.settings.keys, pool)
            holders = await pending_by_consumer(services.redis, services.settings.keys, pool)
            stats["consumers"] = {
                c.name: {"pending": c.pending, "max_idle_seconds": c.max_idle_seconds}
                for c in holders
            }
            pools[pool] = {"live_workers": live, **stats}
            ok = ok and live > 0
        checks["pools"] = pools
        # Ingestion (docs/documents.md): reported, not required. Chat works
        # without it; uploaded files wait to be read until a worker is back.
        keys = services.settings.keys
        ingesting = await live_workers(
            services.redis, keys, INGEST_POOL, heartbeats=keys.ingest_workers()
        )
        checks["ingestion"] = {
            "pool": INGEST_POOL,
            "live_workers": len(ingesting),
            "stream_length": int(await services.redis.xlen(keys.ingest())),
        }
    except (RedisError, OSError) as exc:
        checks["redis"] = f"unreachable: {type(exc).__name__}"
        ok = False
    reader_ok = services.hub.healthy
    checks["reader"] = "ok" if reader_ok else "not reading"
    ok = ok and reader_ok
    checks["resumes"] = services.sockets.resumes
    return checks, ok


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(request: Request, services: ServicesDep) -> PlainTextResponse:
    """Prometheus text; needs ``Authorization: Bearer <TIDECHAT_METRICS_TOKEN>``
    when that is set."""
    if services.settings.metrics_token is not None and not is_operator(request, services):
        raise ApiError("unauthorized", "metrics need the metrics token as a bearer")
    return PlainTextResponse(await render_metrics(services), media_type="text/plain; version=0.0.4")
