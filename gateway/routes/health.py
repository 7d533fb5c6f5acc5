"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse
from redis.exceptions import RedisError

from gateway.deps import ServicesDep
from gateway.metrics import pool_stats, render_metrics
from shared.keys import WORKER_DEAD_AFTER_S
from shared.queue_status import pending_by_consumer
from shared.redis_features import JSON, QUERY_ENGINE, explain, missing_features

router = APIRouter()


@router.get("/health")
async def health() -> dict[str, str]:
    """The process is alive (no dependency is checked)."""
    return {"status": "ok"}


@router.get("/ready")
async def ready(services: ServicesDep) -> JSONResponse:
    """Ready to chat: Redis reachable with JSON and the query engine, a live
    worker per pool. When something is missing, ``reason`` says what to install."""
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
        now_ms = time.time() * 1000
        pools: dict[str, Any] = {}
        for pool in services.catalog.pools():
            live = await services.redis.zcount(
                services.settings.keys.workers(pool), now_ms - WORKER_DEAD_AFTER_S * 1000, "+inf"
            )
            stats = await pool_stats(services.redis, services.settings.keys, pool)
            holders = await pending_by_consumer(services.redis, services.settings.keys, pool)
            stats["consumers"] = {
                c.name: {"pending": c.pending, "max_idle_seconds": c.max_idle_seconds}
                for c in holders
            }
            pools[pool] = {"live_workers": live, **stats}
            ok = ok and live > 0
        checks["pools"] = pools
    except (RedisError, OSError) as exc:
        checks["redis"] = f"unreachable: {type(exc).__name__}"
        ok = False
    reader_ok = services.hub.healthy
    checks["reader"] = "ok" if reader_ok else "not reading"
    ok = ok and reader_ok
    checks["resumes"] = services.resumes
    return JSONResponse({"ready": ok, **checks}, status_code=200 if ok else 503)


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(services: ServicesDep) -> PlainTextResponse:
    return PlainTextResponse(await render_metrics(services), media_type="text/plain; version=0.0.4")
