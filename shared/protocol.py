"""The WebSocket protocol of DESIGN.md as pydantic models.

Client frames and server events are each one union tagged by a ``Literal``
``type``; the web client's TypeScript types are generated from these models
(``scripts/gen-types``), so this module is the single source of truth.

Every server event but ``hello``, ``pong`` and errors about a bad frame is
written to the session stream and carries ``event_id`` (the stream entry id)
when delivered.

Longer than ~300 lines on purpose: it is the one wire contract, which
``scripts/gen_types.py`` turns into ``web/src/protocol.gen.ts`` whole, and
the unions at the bottom must name every frame and event. Fields that
frames or events share are declared once in a base (``_OnMessage``,
``_ToolEvent``); what remains alike is the shape of a model declaration.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator

from shared.conversation import ConversationView, Id, Message
from shared.tools import ToolStatus

ErrorCode = Literal[
    "bad_request",
    "too_large",
    #: An uploaded file of a kind tidechat does not read (HTTP 415).
    "unsupported_type",
    "not_found",
    "forbidden",
    "unauthorized",
    "rate_limited",
    #: The user's storage quota (conversations, messages, bytes) is used up.
    "quota_exceeded",
    #: Redis refuses writes (maxmemory reached): the server's storage is full.
    "storage_full",
    "busy",
    #: The moderation hook refused the message (its reason is the admin's
    #: words); the message is stored, marked blocked, and not answered.
    "blocked",
    #: Sign-in refused: an admin disabled this account.
    "account_disabled",
    #: A ``message`` named a ``parent_id`` that is no longer the conversation's
    #: newest message (another tab or device added to it): nothing was stored;
    #: ``current_id`` says where the conversation is now.
    "conflict",
    "backend_error",
    "backend_unavailable",
    "timeout",
    "internal",
]


class _Frame(BaseModel):
    # Unknown extra fields are ignored so an older server accepts a newer client.
    model_config = ConfigDict(extra="ignore")


# --- client -> server ---------------------------------------------------------


class MessageFrame(_Frame):
    """A new user message and a reply to it (``conversation_id`` null: new conversation).

    ``parent_id`` is the newest message the client saw: if the conversation
    has moved on since (its ``current_id`` is another message), the frame is
    refused with ``conflict`` instead of branching behind the user's back.
    Without it the message follows the conversation's ``current_id``.
    """

    type: Literal["message"]
    content: str
    conversation_id: Id | None = None
    model: str | None = None
    parent_id: Id | None = None
    client_id: Annotated[str, Field(max_length=128)] | None = None
    #: Ids of the caller's uploaded files (``POST /api/files``) to attach.
    attachments: Annotated[list[Id], Field(max_length=100)] = Field(default_factory=list)


class _OnMessage(_Frame):
    """A frame about one message of a conversation, answered by a turn."""

    conversation_id: Id
    message_id: Id
    model: str | None = None
    #: Echoed on the turn's ``stream_start``; a frame sent twice with the same
    #: ``client_id`` in one session is acted on once.
    client_id: Annotated[str, Field(max_length=128)] | None = None


class RegenerateFrame(_OnMessage):
    """A new sibling reply to the user message that ``message_id`` answers."""

    type: Literal["regenerate"]


class EditFrame(_OnMessage):
    """A new sibling of user message ``message_id`` with new content, and a reply."""

    type: Literal["edit"]
    content: str
    #: The new version's files (the caller's own). Left out: the edited
    #: message keeps the original's (those that still exist); ``[]``: none.
    attachments: Annotated[list[Id], Field(max_length=100)] | None = None


class StopFrame(_Frame):
    type: Literal["stop"]
    turn_id: Id


StreamPosition = Annotated[str, Field(pattern=r"^\d{1,20}-\d{1,20}$")]


def _stream_id(value: str | None) -> str | None:
    # Redis refuses an id past two 64-bit numbers, and the gateway's one
    # reader would then fail for every socket: refused here instead.
    if value is not None and any(int(part) >= 2**64 for part in value.split("-")):
        raise ValueError("not an event id")
    return value


class ResumeFrame(_Frame):
    """Replay every session event after ``after`` (an ``event_id``), then go
    live; with ``feed_after`` (a ``feed_id``), the user's feed too."""

    type: Literal["resume"]
    after: StreamPosition
    feed_after: StreamPosition | None = None

    _ids = field_validator("after", "feed_after")(_stream_id)


class WatchFrame(_Frame):
    """The conversation this socket shows (null: none). Turns that the
    user's other tabs and devices run in it are delivered here too, live,
    from their first event (one already running included)."""

    type: Literal["watch"]
    conversation_id: Id | None = None


class PingFrame(_Frame):
    type: Literal["ping"]


#: A tool call's id (the model's, or ``s<step>c<index>``), as a client names it.
CallId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")]


class ApproveFrame(_Frame):
    """Tools (issue 15): the user's answer to an ``approval_required``
    event: run the call (``approve`` true) or refuse it. The first answer
    counts; only the turn's own user may answer (``POST
    /api/turns/{turn_id}/approvals/{call_id}`` is the same over HTTP)."""

    type: Literal["approve"]
    turn_id: Id
    call_id: CallId
    approve: bool


ClientFrame = Annotated[
    MessageFrame
    | RegenerateFrame
    | EditFrame
    | StopFrame
    | ResumeFrame
    | WatchFrame
    | PingFrame
    | ApproveFrame,
    Field(discriminator="type"),
]
client_frame_adapter: TypeAdapter[ClientFrame] = TypeAdapter(ClientFrame)


# --- server -> client ---------------------------------------------------------


class EventBase(BaseModel):
    """Every server event: those from a session stream carry ``event_id``
    (the stream entry id) when delivered; ``hello``, ``pong`` and errors about
    a bad frame are sent directly and have none.

    Events from the user's feed carry ``feed_id`` instead (where a ``resume``'s
    ``feed_after`` continues); events of a turn another tab runs, followed
    from that tab's session stream, carry neither: a client never moves its
    resume point for them (``watch`` delivers them again from the start)."""

    event_id: str | None = None
    feed_id: str | None = None


#: Fields the gateway adds when it delivers an event, never stored with it.
DELIVERY_FIELDS: set[str] = {"event_id", "feed_id"}


class UserInfo(BaseModel):
    id: str
    username: str
    is_admin: bool = False
    #: Signed in with a one-time password an admin set: the account must
    #: choose its own before anything else (``POST /api/auth/password``).
    must_change_password: bool = False


class HelloEvent(EventBase):
    type: Literal["hello"] = "hello"
    session: str
    user: UserInfo


class PongEvent(EventBase):
    type: Literal["pong"] = "pong"


class ConversationCreatedEvent(EventBase):
    type: Literal["conversation_created"] = "conversation_created"
    conversation: ConversationView


class UserMessageEvent(EventBase):
    type: Literal["user_message"] = "user_message"
    conversation_id: str
    message: Message
    client_id: str | None = None
    #: The turn queued to answer this message, so a client can stop it even
    #: before a worker has picked it up.
    turn_id: str | None = None


class StreamStartEvent(EventBase):
    type: Literal["stream_start"] = "stream_start"
    turn_id: str
    conversation_id: str
    message_id: str
    parent_id: str
    model: str
    #: The ``client_id`` of the frame that asked for this reply, if it had one.
    client_id: str | None = None


class StreamChunkEvent(EventBase):
    type: Literal["stream_chunk"] = "stream_chunk"
    turn_id: str
    chunk: str


class StreamRestartEvent(EventBase):
    """A worker took over or retried the turn: discard the partial text."""

    type: Literal["stream_restart"] = "stream_restart"
    turn_id: str
    reason: str


class StreamEndEvent(EventBase):
    """The stored assistant message; its ``content`` is the whole reply."""

    type: Literal["stream_end"] = "stream_end"
    turn_id: str
    conversation_id: str
    message: Message


class _ToolEvent(EventBase):
    """About one tool call of a turn (issue 15, docs/tools.md)."""

    turn_id: str
    #: Which model call of the turn (0: the first) asked for it.
    step: int
    call_id: str


class _ToolAsked(_ToolEvent):
    #: The server's id in the tools file (never its address).
    server: str
    tool: str
    #: The model's JSON text, cut to ``TOOL_PREVIEW_CHARS``.
    arguments: str


class ToolCallEvent(_ToolAsked):
    """The model asked for a tool."""

    type: Literal["tool_call"] = "tool_call"


class ApprovalRequiredEvent(_ToolAsked):
    """A call to an "ask" tool waits for the user (an ``approve`` frame)
    until ``timeout_seconds`` have passed; then it is refused."""

    type: Literal["approval_required"] = "approval_required"
    timeout_seconds: float


class ToolResultEvent(_ToolEvent):
    """A tool call ended; ``preview`` is the start of its result."""

    type: Literal["tool_result"] = "tool_result"
    status: ToolStatus
    preview: str
    duration_ms: int


class TitleEvent(EventBase):
    type: Literal["title"] = "title"
    conversation_id: str
    title: str


class ConversationDeletedEvent(EventBase):
    """From the user's feed: the conversation is gone (deleted in some tab)."""

    type: Literal["conversation_deleted"] = "conversation_deleted"
    conversation_id: str


class TurnStartedEvent(EventBase):
    """From the user's feed: a turn was accepted in one of the user's
    conversations (the sidebar moves it to the top). A socket that
    ``watch``es the conversation then receives the turn's own events."""

    type: Literal["turn_started"] = "turn_started"
    turn_id: str
    conversation_id: str
    title: str
    model: str | None = None
    #: When the turn was accepted (the conversation's new ``updated_at``).
    updated_at: float


class ErrorEvent(EventBase):
    type: Literal["error"] = "error"
    code: ErrorCode
    message: str
    turn_id: str | None = None
    conversation_id: str | None = None
    #: Echoed from the frame that caused it, so a client knows which send failed.
    client_id: str | None = None
    #: ``rate_limited``: seconds until the same request may be accepted.
    retry_after: int | None = None
    #: ``conflict``: the conversation's newest message now (null: it is empty or gone).
    current_id: str | None = None


#: The events that live on a session stream (every server event but
#: ``hello``, ``pong`` and errors about a bad frame, which are sent directly).
SessionEvent = (
    ConversationCreatedEvent
    | UserMessageEvent
    | StreamStartEvent
    | StreamChunkEvent
    | StreamRestartEvent
    | StreamEndEvent
    | ToolCallEvent
    | ApprovalRequiredEvent
    | ToolResultEvent
    | TitleEvent
    | ErrorEvent
)
#: The events on a user's feed (``Keys.user_feed``): what every tab of the
#: user hears about besides its own session.
FeedEvent = ConversationCreatedEvent | ConversationDeletedEvent | TitleEvent | TurnStartedEvent
ServerEvent = Annotated[
    HelloEvent | PongEvent | SessionEvent | ConversationDeletedEvent | TurnStartedEvent,
    Field(discriminator="type"),
]
server_event_adapter: TypeAdapter[ServerEvent] = TypeAdapter(ServerEvent)

#: Events after which a turn is over for a client that only waits for one turn
#: (``POST /api/chat`` closes its event stream on these).
TERMINAL_EVENT_TYPES = frozenset({"stream_end", "error"})


def union_tags(union: Any) -> tuple[str, ...]:
    """The ``type`` tags of a tagged union (``Annotated[A | B, Field(discriminator=...)]``),
    in the union's order."""
    members = get_args(get_args(union)[0])
    return tuple(str(get_args(m.model_fields["type"].annotation)[0]) for m in members)


#: Every client frame's ``type`` (told to a client that sent an unknown one).
CLIENT_FRAME_TYPES = union_tags(ClientFrame)
#: Every server event's ``type``.
SERVER_EVENT_TYPES = union_tags(ServerEvent)


def parse_event(data: str | bytes) -> ServerEvent:
    """Parse a server event (as delivered, ``event_id`` included)."""
    return server_event_adapter.validate_json(data)
