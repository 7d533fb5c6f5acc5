"""Prometheus text for ``/metrics``: this gateway's counters and each pool's
queue, read from Redis at scrape time."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from shared.keys import WORKER_DEAD_AFTER_S, WORKER_GROUP, Keys
from shared.queue_status import pending_by_consumer

if TYPE_CHECKING:
    from gateway.deps import Services


async def pool_stats(redis: Redis, keys: Keys, pool: str) -> dict[str, Any]:
    """Queue depth (on the stream, waiting for a worker), turns waiting in
    users' lines and how many users they belong to, pending (being
    generated), oldest pending age, dead letters and takeovers of one pool."""
    stream = keys.prompts(pool)
    stats: dict[str, Any] = {"queued": 0, "pending": 0, "oldest_pending_seconds": 0.0}
    try:
        groups = {g.get("name"): g for g in await redis.xinfo_groups(stream)}
        group = groups.get(WORKER_GROUP)
        if group is None:  # no worker has joined yet: everything queued is waiting
            stats["queued"] = int(await redis.xlen(stream))
        else:
            stats["queued"] = int(group.get("lag") or 0)
            stats["pending"] = int(group.get("pending") or 0)
        if stats["pending"]:
            oldest = await redis.xpending_range(stream, WORKER_GROUP, "-", "+", 1)
            if oldest:
                ms = int(str(oldest[0]["message_id"]).split("-")[0])
                stats["oldest_pending_seconds"] = max(0.0, time.time() - ms / 1000)
    except ResponseError:
        pass  # the stream does not exist yet
    # Turns waiting in users' own lines (shared/fairness.py): queued too,
    # just not on the stream yet.
    pipe = redis.pipeline(transaction=False)
    pipe.hlen(keys.fair_waiting(pool))
    pipe.scard(keys.fair_lines(pool))
    waiting, waiting_users = await pipe.execute()
    stats["waiting"] = int(waiting)
    stats["waiting_users"] = int(waiting_users)
    stats["dead_letters"] = int(await redis.xlen(keys.dead(pool)))
    counters = await redis.hgetall(keys.metrics(pool))
    stats["takeovers"] = int(counters.get("takeovers", 0))
    return stats


def _line(name: str, value: float, labels: dict[str, str] | None = None) -> str:
    if labels:
        inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
        return f"{name}{{{inner}}} {value}"
    return f"{name} {value}"


async def render_metrics(services: Services) -> str:
    out: list[str] = []

    def metric(
        name: str, kind: str, help_: str, rows: list[tuple[float, dict[str, str] | None]]
    ) -> None:
        out.append(f"# HELP {name} {help_}")
        out.append(f"# TYPE {name} {kind}")
        out.extend(_line(name, v, labels) for v, labels in rows)

    metric(
        "tidechat_gateway_sockets",
        "gauge",
        "Open WebSocket connections.",
        [(len(services.sockets), None)],
    )
    metric(
        "tidechat_gateway_subscribers",
        "gauge",
        "Session-stream subscribers (sockets and SSE).",
        [(services.hub.subscriber_count, None)],
    )
    metric(
        "tidechat_gateway_events_read_total",
        "counter",
        "Session events read by the reader.",
        [(services.hub.events_read, None)],
    )
    metric(
        "tidechat_gateway_turns_submitted_total",
        "counter",
        "Turns queued by this gateway.",
        [(services.turns.turns_submitted, None)],
    )
    metric(
        "tidechat_gateway_busy_total",
        "counter",
        "Turns refused with busy.",
        [(services.turns.admission.refusals, None)],
    )
    metric(
        "tidechat_gateway_quota_refusals_total",
        "counter",
        "Requests refused with quota_exceeded.",
        [(services.turns.admission.quota_refusals, None)],
    )
    metric(
        "tidechat_gateway_stops_refused_total",
        "counter",
        "Stop frames refused past the per-user limit.",
        [(services.turns.stops.refused, None)],
    )
    metric(
        "tidechat_gateway_resumes_total",
        "counter",
        "Sockets that resumed a session.",
        [(services.resumes, None)],
    )
    try:
        keys = services.settings.keys
        now_ms = time.time() * 1000
        rows: dict[str, list[tuple[float, dict[str, str] | None]]] = {}
        for pool in services.catalog.pools():
            stats = await pool_stats(services.redis, keys, pool)
            live = await services.redis.zcount(
                keys.workers(pool), now_ms - WORKER_DEAD_AFTER_S * 1000, "+inf"
            )
            stats["live_workers"] = live
            for name, value in stats.items():
                rows.setdefault(name, []).append((float(value), {"pool": pool}))
            for c in await pending_by_consumer(services.redis, keys, pool):
                labels = {"pool": pool, "consumer": c.name}
                rows.setdefault("consumer_pending", []).append((c.pending, labels))
                rows.setdefault("consumer_max_idle_seconds", []).append(
                    (c.max_idle_seconds, labels)
                )
        for name, values in rows.items():
            kind = "counter" if name in ("takeovers",) else "gauge"
            metric(f"tidechat_pool_{name}", kind, f"Pool {name.replace('_', ' ')}.", values)
        metric("tidechat_redis_up", "gauge", "Whether Redis answered this scrape.", [(1, None)])
    except (RedisError, OSError):
        metric("tidechat_redis_up", "gauge", "Whether Redis answered this scrape.", [(0, None)])
    return "\n".join(out) + "\n"
