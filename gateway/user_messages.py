"""Storing what a user typed: the message first and on its own (one script in
the conversation's slot, with the frame's marker: ``gateway/once.py``), then
what follows a stored message (the user's storage counters, and a new
conversation's ``conversation_created``) in the pipeline that also carries
its events. Used by ``gateway/turns.py`` for a message that gets a reply and
by ``gateway/moderation_hook.py`` for one that is blocked."""

from __future__ import annotations

from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from gateway.errors import ApiError, raise_write_error
from gateway.limits import SessionTtl
from gateway.once import FrameGuard
from gateway.security.sessions import queue_session_ttl
from shared import storage_usage
from shared.conversation import Conversation, Message
from shared.keys import Keys
from shared.protocol import ConversationCreatedEvent, UserInfo
from shared.store import AddResult, ConflictError, ConversationStore
from shared.streams import SessionEvent, queue_feed_event, queue_session_event


@dataclass(slots=True)
class TurnTarget:
    """Where a frame's writes go: whose, from which session (and frame), into
    which conversation."""

    user: UserInfo
    session_id: str
    cid: str
    #: The conversation's title (for ``turn_started``).
    title: str
    client_id: str | None


@dataclass(slots=True)
class Posting(TurnTarget):
    """A user message on its way in, and what storing it changes."""

    message: Message
    #: A conversation this message starts (stored with it), else None.
    created: Conversation | None = None
    #: The model the frame switched the conversation to, else None.
    model_change: str | None = None
    #: The leaf the sender saw: if another tab got a message in first,
    #: nothing is stored (no silent fork).
    expected: str | None = None


async def execute(pipe: Pipeline) -> list[Exception | None]:
    """Run a pipeline; each command's error, or None where it succeeded."""
    results = await pipe.execute(raise_on_error=False)
    return [r if isinstance(r, Exception) else None for r in results]


@dataclass(eq=False)
class MessageWriter:
    """Stores user messages and queues what follows them (events, counters,
    the session stream's TTL)."""

    redis: Redis
    keys: Keys
    store: ConversationStore
    session_ttl: int
    frames: FrameGuard = field(init=False)
    session_ttls: SessionTtl = field(init=False)

    def __post_init__(self) -> None:
        self.frames = FrameGuard(self.redis, self.keys)
        self.session_ttls = SessionTtl(self.session_ttl)

    def guard(self, posting: Posting) -> str | None:
        """The marker of the frame that sent the message (None: no ``client_id``)."""
        return self.frames.key(posting.cid, posting.session_id, posting.client_id)

    def queue_event(self, pipe: Pipeline, session_id: str, event: SessionEvent) -> None:
        queue_session_event(pipe, self.keys, session_id, event, create=True)

    def queue_ttl_if_due(self, pipe: Pipeline, session_id: str) -> None:
        """(Re)set the session stream's TTL, once in a while (``SessionTtl``)."""
        if self.session_ttls.due(session_id):
            queue_session_ttl(pipe, self.keys, session_id, self.session_ttl)

    async def store_message(self, posting: Posting, guard: str | None) -> AddResult:
        """The user's message, first and on its own (with the frame's marker);
        ``status`` 0 is a resent duplicate, acted on already."""
        pipe = self.redis.pipeline(transaction=False)
        self.store.queue_add_message(
            pipe,
            posting.cid,
            posting.message,
            owner=posting.user.id,
            bump=True,
            marker=guard,
            marker_ttl=self.frames.ttl,
            create=posting.created,
            expect_current=posting.expected,
        )
        if posting.model_change is not None:
            self.store.queue_update(
                pipe, posting.cid, posting.user.id, {"model": posting.model_change}
            )
        results = await pipe.execute(raise_on_error=False)
        raise_write_error([r if isinstance(r, Exception) else None for r in results])
        added = AddResult.parse(results[0])
        if added.status == -3:
            raise_write_error([ConflictError(added.current_id)])
        if added.status == -1:
            raise ApiError("not_found", "conversation not found")
        if added.status == -2:
            raise ApiError("not_found", "message not found in this conversation")
        return added

    def queue_stored(self, pipe: Pipeline, posting: Posting, *, messages: int) -> None:
        """What follows a stored user message: the user's storage counters,
        and for a new conversation its ``conversation_created`` (to this
        session and the user's other tabs)."""
        storage_usage.queue_add(
            pipe,
            self.keys,
            posting.user.id,
            conversations=1 if posting.created is not None else 0,
            messages=messages,
            nbytes=storage_usage.text_bytes(posting.message.content),
        )
        if posting.created is not None:
            event = ConversationCreatedEvent(conversation=posting.created.view())
            self.queue_event(pipe, posting.session_id, event)
            queue_feed_event(pipe, self.keys, posting.user.id, event)
