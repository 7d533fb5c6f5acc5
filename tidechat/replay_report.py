"""The report of ``tidechat replay turn``: the recorded turn and its replay
side by side (timings from their session streams, facts from the stored
messages), then both texts and whether they match."""

from __future__ import annotations

import argparse
import difflib
import itertools
import textwrap
from typing import Any

from shared.conversation import Message
from shared.streams import TurnRequest, entry_ms
from tidechat.fmt import local_time, one_line, seconds, short, terminal_width
from tidechat.timeline import TurnTimeline
from tidechat.turn_lookup import Found


def _timings(t: TurnTimeline | None, queued_ms: int | None) -> dict[str, str]:
    if t is None:
        return dict.fromkeys(("picked", "first", "total", "chunks"), "(session expired)")

    def gap(a: int | None, b: int | None) -> str:
        return seconds((b - a) / 1000) if a is not None and b is not None else "-"

    return {
        "picked": gap(queued_ms, t.started_ms),
        "first": gap(t.started_ms, t.first_chunk_ms),
        "total": gap(queued_ms, t.ended_ms),
        "chunks": f"{t.chunks} / {t.restarts}",
    }


def _facts(message: dict[str, Any] | None) -> dict[str, str]:
    if message is None:
        return {"finish": "(no reply stored)", "tokens": "-", "length": "-"}
    usage = message.get("usage") or {}
    error = message.get("error")
    finish = str(message.get("finish_reason"))
    if error:
        finish += f" ({error.get('code')}: {error.get('message')})"
    tokens = f"{usage.get('prompt_tokens')} -> {usage.get('completion_tokens')}" if usage else "-"
    return {
        "finish": finish,
        "tokens": tokens,
        "length": f"{len(message.get('content', ''))} chars",
    }


def print_report(
    found: Found,
    question: Message,
    conv: dict[str, Any],
    recorded_message: dict[str, Any] | None,
    recorded: TurnTimeline | None,
    turn: TurnRequest,
    replayed: TurnTimeline,
    entry_id: str,
    args: argparse.Namespace,
) -> None:
    old = found.turn
    width = max(terminal_width(), 80)
    queued = f", queued {local_time(entry_ms(found.entry_id), date=True)}" if found.entry_id else ""
    print(f"turn {old.turn_id}  found on {found.where}{queued}")
    if found.dead:
        print(f"  dead letter {found.dead}")
    print(
        f"conversation {old.conversation_id} {one_line(str(conv.get('title', '')), 60)}  "
        f"user {old.user_id}  kind {old.kind}"
    )
    print(f"question {short(question.id)}: {one_line(question.content, width - 18)}")
    print()
    old_t = _timings(recorded, entry_ms(found.entry_id) if found.entry_id else None)
    new_t = _timings(replayed, entry_ms(entry_id))
    old_f, new_f = _facts(recorded_message), _facts(replayed.end)
    rows = [
        ("", "RECORDED", "REPLAY"),
        ("turn", old.turn_id, turn.turn_id),
        ("model", old.model, turn.model),
        ("session", old.session_id, turn.session_id),
        ("queued -> picked up", old_t["picked"], new_t["picked"]),
        ("start -> first chunk", old_t["first"], new_t["first"]),
        ("queued -> end", old_t["total"], new_t["total"]),
        ("chunks / restarts", old_t["chunks"], new_t["chunks"]),
        ("finish", old_f["finish"], new_f["finish"]),
        ("tokens in -> out", old_f["tokens"], new_f["tokens"]),
        ("length", old_f["length"], new_f["length"]),
    ]
    col = max((width - 22) // 2 - 1, 34)
    for label, a, b in rows:
        print(f"{label:<22}{a[:col]:<{col}} {b[:col]}".rstrip())
    print()
    old_text = str(recorded_message.get("content", "")) if recorded_message else None
    new_text = str((replayed.end or {}).get("content", ""))
    if args.side_by_side:
        _side_by_side(old_text or "(no reply stored)", new_text, col + 11)
    else:
        print(f"--- recorded reply (message {old.turn_id}) ---")
        print(old_text if old_text is not None else "(no reply stored)")
        print(f"--- replay reply (message {turn.turn_id}) ---")
        print(new_text)
    print("---")
    if old_text is None:
        print("same text: - (nothing recorded to compare)")
    elif old_text == new_text:
        print("same text: yes")
    else:
        ratio = difflib.SequenceMatcher(None, old_text, new_text, autojunk=False).ratio()
        print(f"same text: no ({ratio:.0%} similar)")
    print(
        f"the replay lives in conversation copy {turn.conversation_id} and session "
        f"{turn.session_id} for {seconds(args.keep)} (tidechat replay session {turn.session_id}); "
        "the user's conversation is untouched"
    )


def _side_by_side(left: str, right: str, col: int) -> None:
    def wrap(text: str) -> list[str]:
        lines: list[str] = []
        for para in text.splitlines() or [""]:
            lines += textwrap.wrap(para, col, replace_whitespace=False) or [""]
        return lines

    print(f"{'--- recorded reply ---':<{col}} | --- replay reply ---")
    for a, b in itertools.zip_longest(wrap(left), wrap(right), fillvalue=""):
        print(f"{a:<{col}} | {b}".rstrip())
