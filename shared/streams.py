"""Stream entries: what goes on the prompt, session and dead-letter streams.

Each entry holds its payload as one JSON field, validated by the models here
on the way in and out, so a stream can be replayed and read by any version
of the code that understands the schema.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from shared.conversation import Id, now
from shared.keys import FIELD_DATA, FIELD_TYPE
from shared.protocol import ErrorCode, _Event

TurnKind = Literal["message", "regenerate", "edit"]

#: Stream entries (XRANGE, XREVRANGE) as our clients return them. redis-py
#: types replies for every client (bytes or str, RESP2 or RESP3 shapes); ours
#: are ``decode_responses=True`` with redis-py's default (RESP2) reply shapes.
StreamEntries = list[tuple[str, dict[str, str]]]
#: An XREAD / XREADGROUP reply on those clients: each stream with its entries.
#: (XREADGROUP with ``>`` never answers deleted entries, so no ``None`` fields.)
StreamResponse = list[tuple[str, StreamEntries]]

#: A stream entry id as two numbers, ordered as Redis orders entries.
StreamId = tuple[int, int]


def parse_stream_id(entry_id: str) -> StreamId:
    """``"1700000000000-3"`` as ``(1700000000000, 3)``; ``"5"`` is ``(5, 0)``."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def entry_ms(entry_id: str) -> int:
    """The Unix time (ms) in a stream entry id: when Redis added the entry."""
    return parse_stream_id(entry_id)[0]


class TurnRequest(BaseModel):
    """One turn to generate: an entry on ``prompts(pool)``.

    ``parent_id`` is the user message the reply answers. The assistant
    message a turn produces has the id ``turn_id``, so a worker that takes a
    turn over stores the same message, not a second one.
    """

    turn_id: Id
    kind: TurnKind = "message"
    session_id: Id
    user_id: str
    conversation_id: Id
    parent_id: Id
    model: str
    created_at: float = Field(default_factory=now)
    #: The ``client_id`` of the frame that asked for the turn, for ``stream_start``.
    client_id: str | None = None


class DeadLetter(BaseModel):
    """A turn that failed past the retry limit, kept for inspection and retry."""

    turn: TurnRequest
    code: ErrorCode
    error: str
    deliveries: int
    failed_at: float = Field(default_factory=now)
    entry_id: str | None = None


def encode_turn(turn: TurnRequest) -> dict[str, str]:
    return {FIELD_DATA: turn.model_dump_json()}


def decode_turn(fields: dict[str, str]) -> TurnRequest:
    return TurnRequest.model_validate_json(fields[FIELD_DATA])


def encode_event(event: _Event) -> dict[str, str]:
    """A session-stream entry for an event: its type, and its JSON without ``event_id``."""
    data = event.model_dump_json(exclude={"event_id"})
    return {FIELD_TYPE: getattr(event, "type"), FIELD_DATA: data}  # noqa: B009


def frame_with_event_id(event_id: str, data: str) -> str:
    """The frame a client receives: the stored JSON with ``event_id`` spliced in.

    Stored event JSON always starts with ``{"type":``, so this is a string
    splice rather than a parse and re-encode on the gateway's hot path.
    """
    return '{"event_id":"' + event_id + '",' + data[1:]
