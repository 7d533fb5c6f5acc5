"""Stream entries: what goes on the prompt, session and dead-letter streams,
and the only functions that write them.

Each entry holds its payload as one JSON field, validated by the models here
on the way in and out, so a stream can be replayed and read by any version
of the code that understands the schema. Gateway, worker and the operator
commands queue entries through ``queue_session_event``, ``queue_session_open``,
``queue_feed_event``, ``queue_turn`` and ``queue_dead_letter`` (and, for
documents, ``queue_ingest_job`` and ``queue_ingest_dead``), never with their own XADD: field
names and stream lengths live here and in ``shared/keys.py``. (Lua scripts
that move a turn between a user's line and the stream write the same entry
shape: ``shared/fairness.py`` substitutes ``FIELD_DATA``.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field
from redis.asyncio import Redis

from shared.conversation import Id, now
from shared.keys import (
    DEAD_MAXLEN,
    FEED_MAXLEN,
    FEED_TTL_S,
    FIELD_DATA,
    FIELD_SESSION,
    FIELD_TYPE,
    INGEST_POOL,
    SESSION_MAXLEN,
    Keys,
)

# SessionEvent and FeedEvent are public here too: they are what
# queue_session_event and queue_feed_event take.
from shared.protocol import DELIVERY_FIELDS, ErrorCode
from shared.protocol import FeedEvent as FeedEvent
from shared.protocol import SessionEvent as SessionEvent

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


def older_than(entry_id: str) -> str | None:
    """The XREVRANGE end for entries older than ``entry_id`` (exclusive),
    or None when none can be: Redis refuses ``(0-0`` (no id comes before)."""
    return None if parse_stream_id(entry_id) == (0, 0) else f"({entry_id}"


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
    """A turn that failed past the retry limit, kept for inspection and retry.

    ``turn`` is None for an entry of the prompt stream that was not a turn at
    all (it did not parse): ``raw`` then holds what it was, cut short.
    """

    turn: TurnRequest | None
    code: ErrorCode
    error: str
    deliveries: int
    failed_at: float = Field(default_factory=now)
    #: The entry's id on the prompt stream.
    entry_id: str | None = None
    raw: str | None = None


def encode_turn(turn: TurnRequest) -> dict[str, str]:
    return {FIELD_DATA: turn.model_dump_json()}


def decode_turn(fields: dict[str, str]) -> TurnRequest:
    return TurnRequest.model_validate_json(fields[FIELD_DATA])


def encode_event(event: SessionEvent | FeedEvent) -> dict[str, str]:
    """A session-stream entry for an event: its type, and its JSON without ``event_id``."""
    return {FIELD_TYPE: event.type, FIELD_DATA: event.model_dump_json(exclude=DELIVERY_FIELDS)}


# --- writing entries: a pipeline, or the client itself (then await the result) ---


def queue_session_event(
    target: Any, keys: Keys, session_id: str, event: SessionEvent, *, create: bool
) -> Any:
    """XADD ``event`` to the session's stream on ``target`` (a pipeline, or a
    client: then the awaitable is returned).

    ``create``: only gateways create session streams (and set their TTL and
    owner); a worker's write to a stream that expired is dropped (NOMKSTREAM):
    nobody is there to read it, and the reply is stored either way."""
    return target.xadd(
        keys.session(session_id),
        encode_event(event),
        maxlen=SESSION_MAXLEN,
        approximate=True,
        nomkstream=not create,
    )


#: The entry ``queue_session_open`` writes: the smallest id there is.
SESSION_OPEN_ID = "0-1"


def queue_feed_event(
    target: Any, keys: Keys, user_id: str, event: FeedEvent, *, session_id: str | None = None
) -> None:
    """XADD ``event`` to the user's feed on ``target`` (a pipeline), and keep
    the feed alive for FEED_TTL_S.

    ``session_id``: the session stream that carries the turn a
    ``turn_started`` announces. It is stored beside the event, not in it:
    gateways read it to follow the turn for the user's other sockets, and
    clients never see another tab's session id."""
    fields = encode_event(event)
    if session_id is not None:
        fields[FIELD_SESSION] = session_id
    key = keys.user_feed(user_id)
    target.xadd(key, fields, maxlen=FEED_MAXLEN, approximate=True)
    target.expire(key, FEED_TTL_S)


async def publish_feed_event(redis: Any, keys: Keys, user_id: str, event: FeedEvent) -> None:
    """``queue_feed_event`` on its own (an HTTP change: rename, delete, create)."""
    pipe = redis.pipeline(transaction=False)
    queue_feed_event(pipe, keys, user_id, event)
    await pipe.execute()


def queue_session_open(target: Any, keys: Keys, session_id: str) -> None:
    """Create the session's stream, empty, if it has none, so workers can
    write to it (a regeneration has no gateway event of its own to create
    it). With the smallest id and MAXLEN 0 the XADD leaves nothing behind, and
    fails harmlessly on a stream that exists: the caller ignores its error."""
    target.xadd(
        keys.session(session_id),
        {FIELD_TYPE: "open"},
        id=SESSION_OPEN_ID,
        maxlen=0,
        approximate=False,
    )


def queue_turn(target: Any, keys: Keys, pool: str, turn: TurnRequest) -> Any:
    """XADD a turn straight onto a pool's stream, bypassing the user's fair
    line (operator commands: a replay, a dead letter retried). Users' turns
    go through ``shared/fairness.py``."""
    return target.xadd(keys.prompts(pool), encode_turn(turn))


def queue_dead_letter(target: Any, keys: Keys, pool: str, letter: DeadLetter) -> Any:
    """Record a turn that failed past the retry limit (or a prompt-stream
    entry that was not a turn) on the pool's dead-letter stream."""
    return target.xadd(
        keys.dead(pool),
        {FIELD_DATA: letter.model_dump_json()},
        maxlen=DEAD_MAXLEN,
        approximate=True,
    )


def frame_with_event_id(event_id: str, data: str) -> str:
    """The frame a client receives: the stored JSON with ``event_id`` spliced in.

    Stored event JSON always starts with ``{"type":``, so this is a string
    splice rather than a parse and re-encode on the gateway's hot path.
    """
    return '{"event_id":"' + event_id + '",' + data[1:]


def frame_with_feed_id(feed_id: str, data: str) -> str:
    """A user-feed event as a client receives it: ``feed_id`` spliced in."""
    return '{"feed_id":"' + feed_id + '",' + data[1:]


# --- documents: the ingestion stream (docs/documents.md) ----------------------------


class IngestJob(BaseModel):
    """One file to read and index: an entry on ``ingest(pool)``. The file's
    record (``file(fid)``) holds everything else; a job whose file is gone
    (deleted while queued) is acknowledged and forgotten."""

    file_id: Id
    user_id: str
    created_at: float = Field(default_factory=now)


class IngestDeadLetter(BaseModel):
    """A file whose ingestion failed past the retry limit (its workers kept
    dying on it), or an entry that was not a job (``job`` None, ``raw`` set)."""

    job: IngestJob | None
    error: str
    deliveries: int
    failed_at: float = Field(default_factory=now)
    entry_id: str | None = None
    raw: str | None = None


def decode_ingest_job(fields: dict[str, str]) -> IngestJob:
    return IngestJob.model_validate_json(fields[FIELD_DATA])


def queue_ingest_job(target: Any, keys: Keys, job: IngestJob, pool: str = INGEST_POOL) -> Any:
    """XADD a file to read onto the ingestion stream."""
    return target.xadd(keys.ingest(pool), {FIELD_DATA: job.model_dump_json()})


def queue_ingest_dead(
    target: Any, keys: Keys, letter: IngestDeadLetter, pool: str = INGEST_POOL
) -> Any:
    return target.xadd(
        keys.ingest_dead(pool),
        {FIELD_DATA: letter.model_dump_json()},
        maxlen=DEAD_MAXLEN,
        approximate=True,
    )


@dataclass(eq=False)
class CappedLog:
    """A stream of JSON entries (in ``FIELD_DATA``) kept to about ``maxlen``:
    the audit log and the moderation list, each the only writer of its key."""

    redis: Redis
    keys: Keys
    maxlen: int
    #: Its key's name (a ``Keys`` method), set by each kind of log.
    name: ClassVar[Callable[[Keys], str]]

    def key(self) -> str:
        return type(self).name(self.keys)

    def queue_json(self, target: Any, data: str) -> Any:
        """XADD ``data`` on ``target``: a pipeline, or the client (then the
        awaitable is returned)."""
        return target.xadd(self.key(), {FIELD_DATA: data}, maxlen=self.maxlen, approximate=True)
