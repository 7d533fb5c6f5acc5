"""``tidechat audit``: the audit log (``shared/audit.py``), newest first.

tidechat audit                      the last 50 entries, one line each
tidechat audit --kind signin.       sign-in failure bursts, lockouts, disabled accounts
tidechat audit --category security  security events only
tidechat audit --user alice -n 0    everything alice did or had done to her
tidechat audit --json -n 0 > a.jsonl  the whole log as JSON lines (an export)
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from shared.audit import AuditEntry, AuditFilter, AuditLog
from tidechat.ops import Ops


def add_parser(sub: Any, command: Any) -> None:
    au = sub.add_parser("audit", help="the audit log: admin actions and security events")
    au.add_argument(
        "--kind",
        action="append",
        default=[],
        help="an event kind or a prefix (signin.); repeatable",
    )
    au.add_argument(
        "--category", choices=["admin", "security"], help="only admin actions or security events"
    )
    au.add_argument("--user", help="entries where this user (name or id) acted or was acted on")
    au.add_argument("--since", type=float, metavar="HOURS", help="only the last HOURS hours")
    au.add_argument(
        "-n", "--limit", type=int, default=50, help="entries shown, newest first (0: all)"
    )
    au.add_argument("--json", action="store_true", help="JSON lines (one entry a line), for export")
    command(au, audit)


def line(entry: AuditEntry) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(entry.ts))
    actor = entry.actor.name or entry.actor.id if entry.actor else (entry.address or "-")
    target = f" -> {entry.target.name or entry.target.id}" if entry.target else ""
    detail = " ".join(f"{k}={v}" for k, v in entry.detail.items() if v not in (None, "", []))
    return f"{when}Z  {entry.kind:<24} {actor}{target}  {detail}".rstrip()


async def audit(ops: Ops, args: argparse.Namespace) -> int:
    log = AuditLog(ops.redis, ops.keys)
    filt = AuditFilter(
        kinds=list(args.kind),
        category=args.category,
        user=args.user,
        since=time.time() - args.since * 3600 if args.since else None,
    )
    if args.limit > 0:
        entries, _ = await log.read(filt, limit=args.limit)
    else:
        entries = list(await log.entries(filt))
    for entry in entries:
        print(entry.model_dump_json() if args.json else line(entry))
    if not entries and not args.json:
        print("no audit entries match")
    return 0
