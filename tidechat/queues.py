"""``tidechat streams``: the prompt streams as an operator needs to see them
(each pool's newest dead letters too; ``tidechat dead``: ``tidechat/dead.py``).

The headline figures of each pool (queued, pending, oldest pending age, dead
letters, takeovers) come from the same function as ``/ready`` and
``/metrics``, so the command and the dashboards never disagree.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from typing import Any, cast

from shared.keys import FIELD_DATA, WORKER_DEAD_AFTER_S
from shared.queue_status import ConsumerPending, live_workers, pending_by_consumer, pool_stats
from shared.streams import StreamEntries
from tidechat.dead import dead_line, decode_dead
from tidechat.fmt import plural, seconds, terminal_width
from tidechat.ops import Ops

#: Pending entries listed per consumer in the text output (``--json``: all sampled).
_ENTRIES_SHOWN = 5


# --- tidechat streams --------------------------------------------------------------


async def pool_report(ops: Ops, pool: str, dead_shown: int) -> dict[str, Any]:
    redis, keys = ops.redis, ops.keys
    stream = keys.prompts(pool)
    report: dict[str, Any] = {"pool": pool, "stream": stream}
    report["length"] = int(await redis.xlen(stream))
    report.update(await pool_stats(redis, keys, pool))
    report["counters"] = {k: int(v) for k, v in (await redis.hgetall(keys.metrics(pool))).items()}
    workers = await live_workers(redis, keys, pool)
    report["live_workers"] = len(workers)
    report["workers"] = [
        {"name": name, "heartbeat_seconds_ago": round(age, 3)}
        for name, age in sorted(workers.items())
    ]
    holders = await pending_by_consumer(redis, keys, pool)
    turn_ids = await _turn_ids(ops, stream, holders)
    report["consumers"] = [
        {
            "name": c.name,
            "live": c.name in workers,
            "pending": c.pending,
            "seen_seconds_ago": c.seen_seconds_ago,
            "max_idle_seconds": c.max_idle_seconds,
            "entries": [{**asdict(e), "turn_id": turn_ids.get(e.entry_id)} for e in c.entries],
        }
        for c in holders
    ]
    rows = cast(StreamEntries, await redis.xrevrange(keys.dead(pool), count=max(dead_shown, 0)))
    report["newest_dead_letters"] = [
        decode_dead(pool, eid, fields).summary() for eid, fields in rows
    ]
    return report


async def _turn_ids(ops: Ops, stream: str, holders: list[ConsumerPending]) -> dict[str, str]:
    """The turn ids of the pending entries the text output shows (one XRANGE each,
    pipelined); the others are left out of ``--json`` too, to keep it cheap."""
    ids = [e.entry_id for c in holders for e in c.entries[:_ENTRIES_SHOWN]]
    if not ids:
        return {}
    pipe = ops.redis.pipeline(transaction=False)
    for entry_id in ids:
        pipe.xrange(stream, min=entry_id, max=entry_id)
    found: dict[str, str] = {}
    for entry_id, rows in zip(ids, await pipe.execute(), strict=True):
        data = rows[0][1].get(FIELD_DATA, "") if rows else ""
        try:
            found[entry_id] = str(json.loads(data)["turn_id"])
        except (ValueError, KeyError, TypeError):
            found[entry_id] = "(trimmed or malformed)"
    return found


async def streams(ops: Ops, args: argparse.Namespace) -> int:
    reports = [await pool_report(ops, pool, args.dead) for pool in await ops.pools()]
    if args.json:
        print(json.dumps({"pools": reports}, indent=2))
        return 0
    width = terminal_width()
    for report in reports:
        _print_pool(report, width)
    return 0


def _print_pool(r: dict[str, Any], width: int) -> None:
    out = sys.stdout
    print(f"pool {r['pool']}  ({r['stream']})", file=out)
    print(
        f"  stream     {r['length']} entries; {r['queued']} waiting for a worker (group lag); "
        f"{r['pending']} being generated",
        file=out,
    )
    print(
        f"  lines      {plural(r['waiting'], 'turn')} waiting in the lines of "
        f"{plural(r['waiting_users'], 'user')} (each user holds at most its share of the stream)",
        file=out,
    )
    names = ", ".join(
        f"{w['name']} ({seconds(w['heartbeat_seconds_ago'])} ago)" for w in r["workers"]
    )
    print(f"  workers    {r['live_workers']} live  {names}".rstrip(), file=out)
    if r["pending"]:
        oldest = seconds(r["oldest_pending_seconds"])
        print(f"  pending    {r['pending']}; oldest queued {oldest} ago", file=out)
    for c in r["consumers"]:
        state = "live worker" if c["live"] else f"NO HEARTBEAT for {WORKER_DEAD_AFTER_S:.0f}s+"
        print(
            f"    {c['name']}  {c['pending']} pending, longest idle "
            f"{seconds(c['max_idle_seconds'])}, last seen {seconds(c['seen_seconds_ago'])} ago"
            f"  [{state}]",
            file=out,
        )
        for e in c["entries"][:_ENTRIES_SHOWN]:
            print(
                f"      {e['entry_id']}  turn {e['turn_id']}  idle {seconds(e['idle_seconds'])}"
                f"  delivered {e['deliveries']}x",
                file=out,
            )
        if c["pending"] > _ENTRIES_SHOWN:
            print(f"      ... and {c['pending'] - _ENTRIES_SHOWN} more", file=out)
    counters = "  ".join(f"{k} {v}" for k, v in sorted(r["counters"].items()))
    print(f"  counters   {counters or '-'}", file=out)
    print(f"  dead       {plural(r['dead_letters'], 'dead letter')}", file=out)
    for row in r["newest_dead_letters"]:
        print("    " + dead_line(row, width - 4), file=out)
    print(file=out)
