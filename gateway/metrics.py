"""Prometheus text for ``/metrics``: this gateway's counters and each pool's
queue, read from Redis at scrape time."""

from __future__ import annotations

from typing import TYPE_CHECKING

from redis.exceptions import RedisError

from shared.queue_status import live_workers, pending_by_consumer, pool_stats

if TYPE_CHECKING:
    from gateway.deps import Services


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

    # This process's own figures: (name, kind, help, value).
    own: list[tuple[str, str, str, float]] = [
        ("sockets", "gauge", "Open WebSocket connections.", len(services.sockets)),
        (
            "subscribers",
            "gauge",
            "Session-stream subscribers (sockets and SSE).",
            services.hub.subscriber_count,
        ),
        (
            "events_read_total",
            "counter",
            "Session events read by the reader.",
            services.hub.events_read,
        ),
        (
            "turns_submitted_total",
            "counter",
            "Turns queued by this gateway.",
            services.turns.queue.submitted,
        ),
        ("busy_total", "counter", "Turns refused with busy.", services.turns.admission.refusals),
        (
            "quota_refusals_total",
            "counter",
            "Requests refused with quota_exceeded.",
            services.turns.admission.quota_refusals,
        ),
        (
            "stops_refused_total",
            "counter",
            "Stop frames refused past the per-user limit.",
            services.turns.stops.refused,
        ),
        ("resumes_total", "counter", "Sockets that resumed a session.", services.sockets.resumes),
    ]
    for name, kind, help_, value in own:
        metric(f"tidechat_gateway_{name}", kind, help_, [(value, None)])
    try:
        keys = services.settings.keys
        rows: dict[str, list[tuple[float, dict[str, str] | None]]] = {}
        for pool in services.catalog.pools():
            stats = await pool_stats(services.redis, keys, pool)
            stats["live_workers"] = len(await live_workers(services.redis, keys, pool))
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
