"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse
from redis.exceptions import RedisError

from gateway.deps import ServicesDep
from gateway.metrics import render_metrics
from shared.queue_status import live_workers, pending_by_consumer, pool_stats
from shared.redis_client import has_json_module

router = APIRouter()


@router.get("/health")
async def health() -> dict[str, str]:
    """The process is alive (no dependency is checked)."""
    return {"status": "ok"}


@router.get("/ready")
async def ready(services: ServicesDep) -> JSONResponse:
    """Ready to chat: Redis reachable, JSON module present, a live worker per pool."""
    checks: dict[str, Any] = {}
    ok = True
    try:
        await services.redis.ping()
        checks["redis"] = "ok"
        json_ok = await has_json_module(services.redis)
        checks["json_module"] = "ok" if json_ok else "missing"
        ok = ok and json_ok
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
