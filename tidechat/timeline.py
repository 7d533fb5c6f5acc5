"""``tidechat replay session``: a session stream's events as a timeline.

The session stream is the record of everything one client was sent, in
order, with Redis's own timestamps in the entry ids; reading it shows what
a user saw and when (a slow first token, a takeover's ``stream_restart``, an
error) without any logging having been switched on.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, cast

from redis.asyncio import Redis

from shared.keys import FIELD_DATA, FIELD_TYPE
from shared.streams import (
    StreamEntries,
    StreamResponse,
    entry_ms,
    frame_with_event_id,
    parse_stream_id,
)
from tidechat.fmt import local_time, one_line, plural, seconds, short, terminal_width
from tidechat.ops import BLOCK_MS, Ops, OpsError, raise_if_cancelled

#: Entries read per XRANGE: a whole session (at most ~10k events) in a few reads.
PAGE = 1_000

_ENTRY_ID = re.compile(r"^\d{1,20}(-\d{1,20})?$")

#: Width of everything before the text column of a timeline line.
_PREFIX_WIDTH = 12 + 1 + 8 + 1 + 16 + 1 + 20 + 1 + 8 + 1 + 7 + 1


@dataclass(frozen=True, slots=True)
class Event:
    """One session-stream entry, decoded as far as it can be."""

    entry_id: str
    type: str
    data: dict[str, Any]
    #: Bytes of the event JSON (what a client receives, less ``event_id``).
    size: int
    raw: str

    @property
    def ms(self) -> int:
        return entry_ms(self.entry_id)

    @property
    def turn_id(self) -> str | None:
        value = self.data.get("turn_id")
        return str(value) if value else None


def decode(entry_id: str, fields: dict[str, str]) -> Event:
    raw = fields.get(FIELD_DATA, "")
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        data = {}
    type_ = fields.get(FIELD_TYPE) or str(data.get("type") or "?")
    return Event(entry_id, type_, data, len(raw.encode()), raw)


def describe(event: Event, width: int | None) -> str:
    """The text of an event: what a person reading the timeline wants to see."""
    d = event.data
    found = d.get("message")
    message: dict[str, Any] = found if isinstance(found, dict) else {}
    match event.type:
        case "stream_chunk":
            return one_line(str(d.get("chunk", "")), width)
        case "user_message":
            return one_line(str(message.get("content", "")), width)
        case "stream_end":
            usage = message.get("usage") or {}
            head = f"[{message.get('finish_reason')}"
            if usage:
                head += f", {usage.get('prompt_tokens')}->{usage.get('completion_tokens')} tok"
            head += "] "
            error = message.get("error")
            content = str(message.get("content", ""))
            if error:
                head += f"{error.get('code')}: {error.get('message')} "
                if not content:  # a failed reply usually has no text
                    return head.rstrip()
            rest = None if width is None else max(width - len(head), 10)
            return head + one_line(content, rest)
        case "stream_start":
            return (
                f"model={d.get('model')} conversation={short(d.get('conversation_id'))} "
                f"parent={short(d.get('parent_id'))}"
            )
        case "stream_restart":
            return one_line(str(d.get("reason", "")), width)
        case "error":
            return f"{d.get('code')}: " + one_line(str(d.get("message", "")), width)
        case "title":
            return one_line(str(d.get("title", "")), width)
        case "conversation_created":
            conv = d.get("conversation") or {}
            return f"conversation={short(conv.get('id'))} " + one_line(
                str(conv.get("title", "")), width
            )
        case _:
            return one_line(event.raw, width)


def line(event: Event, previous_ms: int | None, width: int | None) -> str:
    delta = "" if previous_ms is None else f"+{(event.ms - previous_ms) / 1000:.3f}"
    text_width = None if width is None else max(width - _PREFIX_WIDTH, 24)
    return (
        f"{local_time(event.ms)} {delta:>8} {event.entry_id:<16} {event.type:<20} "
        f"{short(event.turn_id):<8} {event.size:>6}B {describe(event, text_width)}"
    )


HEADER = f"{'TIME':<12} {'+SECONDS':>8} {'EVENT ID':<16} {'TYPE':<20} {'TURN':<8} {'SIZE':>7} TEXT"


async def read_events(redis: Redis, key: str, start: str = "-") -> AsyncIterator[list[Event]]:
    """Every entry from ``start`` (inclusive) on, a page at a time."""
    while True:
        rows = cast(StreamEntries, await redis.xrange(key, min=start, max="+", count=PAGE))
        if not rows:
            return
        yield [decode(eid, fields) for eid, fields in rows]
        if len(rows) < PAGE:
            return
        start = "(" + rows[-1][0]


@dataclass(slots=True)
class TurnTimeline:
    """One turn as its events tell it, for comparing a recording with a replay."""

    turn_id: str
    started_ms: int | None = None
    first_chunk_ms: int | None = None
    ended_ms: int | None = None
    chunks: int = 0
    restarts: int = 0
    errors: list[str] = field(default_factory=list)
    streamed: str = ""
    end: dict[str, Any] | None = None

    def add(self, event: Event) -> None:
        if event.turn_id != self.turn_id:
            return
        match event.type:
            case "stream_start":
                self.started_ms = self.started_ms or event.ms
            case "stream_restart":
                self.restarts += 1
                self.streamed = ""
                self.first_chunk_ms = None
            case "stream_chunk":
                self.chunks += 1
                self.first_chunk_ms = self.first_chunk_ms or event.ms
                self.streamed += str(event.data.get("chunk", ""))
            case "error":
                self.errors.append(f"{event.data.get('code')}: {event.data.get('message')}")
            case "stream_end":
                self.ended_ms = event.ms
                message = event.data.get("message")
                self.end = message if isinstance(message, dict) else None


async def turn_timeline(redis: Redis, key: str, turn_id: str) -> TurnTimeline | None:
    """The turn's events in a session stream; None when the stream is gone."""
    if not await redis.exists(key):
        return None
    timeline = TurnTimeline(turn_id)
    async for page in read_events(redis, key):
        for event in page:
            timeline.add(event)
    return timeline


async def replay_session(ops: Ops, args: argparse.Namespace) -> int:
    sid: str = args.session_id
    key = ops.keys.session(sid)
    start = "-"
    if args.from_id:
        if not _ENTRY_ID.match(args.from_id):
            raise OpsError(
                f"--from {args.from_id!r} is not an event id (like 1712345678901-0) "
                "or a Unix time in ms"
            )
        start = args.from_id
    kind = str(await ops.redis.type(key))
    if kind == "none":
        raise OpsError(
            f"session {sid!r} not found: it never existed, or it expired (session streams "
            "expire some minutes after their last use)"
        )
    if kind != "stream":
        raise OpsError(f"{key} is a {kind}, not a session stream")
    width = None if args.full else terminal_width()
    out = sys.stdout
    if not args.json:
        length = await ops.redis.xlen(key)
        ttl = await ops.redis.ttl(key)
        expiry = f"expires in {seconds(ttl)}" if ttl >= 0 else "no expiry set"
        shown = "" if start == "-" else f", from {start}"
        print(f"session {sid}: {plural(length, 'event')}{shown}; {expiry}", file=out)
        print(HEADER, file=out)
    last_id = "0-0" if start == "-" else _before(start)
    previous_ms: int | None = None
    count = 0
    async for page in read_events(ops.redis, key, start):
        for event in page:
            _emit(event, previous_ms, width, args.json)
            previous_ms, last_id = event.ms, event.entry_id
            count += 1
    if not args.json and not args.follow:
        print(f"({plural(count, 'event')} shown)", file=out)
    if args.follow:
        await _follow(ops.redis, key, last_id, previous_ms, width, args.json)
    return 0


def _before(start: str) -> str:
    """An XREAD id just before ``start`` (XREAD is exclusive, ``--from`` is not)."""
    ms, seq = parse_stream_id(start)
    if seq > 0:
        return f"{ms}-{seq - 1}"
    return f"{ms - 1}-18446744073709551615" if ms > 0 else "0-0"


def _emit(event: Event, previous_ms: int | None, width: int | None, as_json: bool) -> None:
    if as_json:
        # A stored event always starts with `{"type":`; anything else is shown as found.
        frame = frame_with_event_id(event.entry_id, event.raw) if event.data else event.raw
        print(frame, flush=True)
    else:
        print(line(event, previous_ms, width), flush=True)


async def _follow(
    redis: Redis,
    key: str,
    last_id: str,
    previous_ms: int | None,
    width: int | None,
    as_json: bool,
) -> None:
    """Print new events as they come (XREAD BLOCK) until the stream expires or Ctrl-C."""
    print("-- following; Ctrl-C to stop --", file=sys.stderr, flush=True)
    while True:
        response = cast(
            StreamResponse, await redis.xread({key: last_id}, count=PAGE, block=BLOCK_MS)
        )
        raise_if_cancelled()
        if not response:
            if not await redis.exists(key):
                print("-- the session stream expired --", file=sys.stderr)
                return
            continue
        for _stream, entries in response:
            for entry_id, fields in entries:
                event = decode(entry_id, fields)
                _emit(event, previous_ms, width, as_json)
                previous_ms, last_id = event.ms, entry_id
