"""``tidechat turn TURN_ID``: everything about one turn, from the id the web
client copies (a reply's menu, "Copy turn ID"): whose it is, which
conversation and session, where it is now (waiting, running on which
worker, answered, dead), and the commands that look further."""

from __future__ import annotations

import argparse
import json
from typing import Any, cast

from shared.keys import WORKER_GROUP
from shared.store import ConversationStore
from tidechat.fmt import local_time, one_line
from tidechat.ops import Ops
from tidechat.turn_lookup import Found, find_turn


async def _status(ops: Ops, found: Found) -> tuple[str, dict[str, Any] | None]:
    """Where the turn is now, and its stored reply (a reply's id is its turn's)."""
    turn = found.turn
    conv = await ConversationStore(ops.redis, ops.keys).get(turn.conversation_id)
    reply = conv.messages.get(turn.turn_id) if conv is not None else None
    if reply is not None:
        usage = reply.usage.completion_tokens if reply.usage else None
        tokens = f", {usage} tokens" if usage is not None else ""
        return f"answered ({reply.finish_reason}{tokens})", reply.model_dump(mode="json")
    if found.dead:
        return f"dead letter {found.dead}", None
    if conv is None:
        return "its conversation is gone (deleted)", None
    if found.entry_id is not None:
        rows = cast(
            list[dict[str, Any]],
            await ops.redis.xpending_range(
                ops.keys.prompts(found.pool), WORKER_GROUP, found.entry_id, found.entry_id, 1
            ),
        )
        if rows:
            row = rows[0]
            return (
                f"running on {row['consumer']} (delivery {row['times_delivered']})",
                None,
            )
    return "waiting for a worker (or its user's line)", None


async def show_turn(ops: Ops, args: argparse.Namespace) -> int:
    found = await find_turn(ops, args.turn_id)
    turn = found.turn
    status, reply = await _status(ops, found)
    since_ms = int(turn.created_at * 1000) - 1000
    commands = [
        f"tidechat replay session {turn.session_id} --from {since_ms}",
        f"tidechat replay turn {turn.turn_id}",
    ]
    if args.json:
        out = {
            "turn": turn.model_dump(mode="json"),
            "pool": found.pool,
            "entry_id": found.entry_id,
            "found_on": found.where,
            "status": status,
            "reply": reply,
            "next": commands,
        }
        print(json.dumps(out, indent=2))
        return 0
    rows = [
        ("turn", f"{turn.turn_id} ({turn.kind})"),
        ("asked", local_time(turn.created_at * 1000, date=True)),
        ("user", turn.user_id),
        ("conversation", turn.conversation_id),
        ("session", turn.session_id),
        ("model", f"{turn.model} (pool {found.pool})"),
        ("queued as", f"{found.entry_id or '?'} on {found.where}"),
        ("status", status),
    ]
    if reply is not None:
        rows.append(("reply", one_line(str(reply.get("content", "")), 100)))
    for name, value in rows:
        print(f"{name:<13}{value}")
    print("\nlook further:")
    for command in commands:
        print(f"  {command}")
    return 0
