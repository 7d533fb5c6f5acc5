"""Accepting turns: the one place that turns a ``message``, ``regenerate``,
``edit`` or ``stop`` into Redis writes, for the WebSocket and for
``POST /api/chat`` alike.

Everything a user typed is stored in the conversation first (one script in
the conversation's slot, which also records the frame's ``client_id``: see
``gateway/once.py``), then its ``user_message`` event is written and the
turn queued, in one pipeline: no failure later on can lose what was typed.
What a frame may ask for is checked by ``gateway/turn_checks.py``, the
message is stored by ``gateway/user_messages.py``, and one the moderation
hook blocks goes to ``gateway/moderation_hook.py`` instead of a turn.
"""

from __future__ import annotations

from redis.asyncio import Redis

from gateway.admission import Adds
from gateway.config import GatewaySettings
from gateway.errors import ApiError, raise_write_error
from gateway.moderation_hook import InputModeration
from gateway.once import conversation_id_for
from gateway.security.sessions import queue_session_ttl
from gateway.stops import StopGate
from gateway.turn_checks import TurnChecks
from gateway.turn_queue import TurnQueue
from gateway.user_messages import MessageWriter, Posting, TurnTarget, execute
from shared import storage_usage
from shared.audit import AuditLog
from shared.conversation import Conversation, Message, new_id, now
from shared.files import FileStore
from shared.keys import Keys
from shared.models_file import ModelCatalog, ModelSpec
from shared.moderation import Moderator
from shared.protocol import (
    EditFrame,
    MessageFrame,
    RegenerateFrame,
    StopFrame,
    UserInfo,
    UserMessageEvent,
)
from shared.store import ConversationStore, title_from_text
from shared.streams import TurnKind, queue_session_open


class TurnService:
    """Built from the gateway's settings (its limits, quotas and TTLs)."""

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        catalog: ModelCatalog,
        store: ConversationStore,
        cfg: GatewaySettings,
        *,
        audit: AuditLog | None = None,
        moderator: Moderator | None = None,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.catalog = catalog
        self.checks = TurnChecks(
            catalog,
            store,
            FileStore(redis, keys),
            max_message_chars=cfg.max_message_chars,
            max_attachments=cfg.max_attachments_per_message,
        )
        self.writer = MessageWriter(redis, keys, store, cfg.session_ttl_seconds)
        self.frames = self.writer.frames
        self.audit = audit or AuditLog(redis, keys)
        self.moderation = InputModeration(self.writer, self.audit, moderator)
        self.queue = TurnQueue(redis, self.writer, cfg, self.audit)
        self.quota = self.queue.quota
        #: Also checked by the conversation routes (new and imported ones).
        self.admission = self.queue.admission
        self.stops = StopGate(redis, keys, cfg.stops_per_minute)

    # --- the frames ------------------------------------------------------------

    async def message(self, user: UserInfo, session_id: str, frame: MessageFrame) -> str | None:
        """A new user message and a turn to answer it; returns the turn id
        (None: a resent duplicate, ignored)."""
        self.checks.content(frame.content)
        attachments = await self.checks.attachments(user, frame.attachments)
        verdict = await self.moderation.verdict(frame.content)
        # The message and the reply to come; a blocked message gets none.
        count = 1 if verdict else 2
        nbytes = storage_usage.text_bytes(frame.content)
        message = Message(
            id=new_id(),
            role="user",
            content=frame.content,
            attachments=attachments,
            blocked=verdict.reason if verdict else None,
        )
        if frame.conversation_id is None:
            spec = self.checks.model(frame.model)
            self.checks.images(spec, attachments)
            await self.admission.check(user.id, spec, Adds(1, count, nbytes))
            posting = self._new_conversation(user, session_id, frame, message, spec)
        else:
            cid = frame.conversation_id
            head = await self.checks.head(user, cid, frame.parent_id)
            spec = self.checks.model(frame.model, head.model)
            self.checks.images(spec, attachments)
            await self.admission.check(user.id, spec, Adds(messages=count, bytes=nbytes))
            message.parent_id = frame.parent_id or head.current_id
            posting = Posting(
                user,
                session_id,
                cid,
                head.title,
                frame.client_id,
                message,
                model_change=spec.id if frame.model and frame.model != head.model else None,
                # Checked by the script that stores the message: if another tab
                # got a message in first, nothing is stored (no silent fork).
                expected=frame.parent_id,
            )
        if verdict is not None:
            await self.moderation.block(posting, verdict)
            return None
        return await self._submit(posting, spec, "message")

    @staticmethod
    def _new_conversation(
        user: UserInfo, session_id: str, frame: MessageFrame, message: Message, spec: ModelSpec
    ) -> Posting:
        """A message that starts a conversation (its id derived from the
        frame's ``client_id``, so a resend names the same one)."""
        ts = now()
        cid = (
            new_id()
            if frame.client_id is None
            else conversation_id_for(session_id, frame.client_id)
        )
        created = Conversation(
            id=cid,
            owner=user.id,
            title=title_from_text(frame.content),
            model=spec.id,
            created_at=ts,
            updated_at=ts,
        )
        message.created_at = ts
        return Posting(user, session_id, cid, created.title, frame.client_id, message, created)

    async def edit(self, user: UserInfo, session_id: str, frame: EditFrame) -> str | None:
        """A sibling of a user message with new content, and a turn to answer it."""
        self.checks.content(frame.content)
        head = await self.checks.head(user, frame.conversation_id, frame.message_id)
        if head.message_role != "user":
            raise ApiError("bad_request", "only your own messages can be edited")
        spec = self.checks.model(frame.model, head.model)
        # The edited question keeps the original's files unless the frame names others.
        attachments = await self.checks.edited_attachments(
            user, head.id, frame.message_id, frame.attachments
        )
        self.checks.images(spec, attachments)
        verdict = await self.moderation.verdict(frame.content)
        count = 1 if verdict else 2
        nbytes = storage_usage.text_bytes(frame.content)
        await self.admission.check(user.id, spec, Adds(messages=count, bytes=nbytes))
        message = Message(
            id=new_id(),
            parent_id=head.message_parent_id,
            role="user",
            content=frame.content,
            attachments=attachments,
            blocked=verdict.reason if verdict else None,
        )
        posting = Posting(user, session_id, head.id, head.title, frame.client_id, message)
        if verdict is not None:
            await self.moderation.block(posting, verdict)
            return None
        return await self._submit(posting, spec, "edit")

    async def _submit(self, posting: Posting, spec: ModelSpec, kind: TurnKind) -> str | None:
        """Store the message, then queue its events and the turn that answers it."""
        user = posting.user
        turn_id = new_id()
        guard = self.writer.guard(posting)
        if not await self.queue.take_slot(user, turn_id, guard):
            return None  # a resent duplicate: acted on already
        try:
            added = await self.writer.store_message(posting, guard)
        except BaseException:
            await self.quota.forget(user.id, turn_id)
            raise
        if added.status == 0:
            await self.quota.forget(user.id, turn_id)
            return None  # a resent duplicate: acted on already
        pipe = self.redis.pipeline(transaction=False)
        # Two messages: this one and its reply (the worker adds the reply's
        # bytes, or takes the message back if it stores none).
        self.writer.queue_stored(pipe, posting, messages=2)
        self.writer.queue_event(
            pipe,
            posting.session_id,
            UserMessageEvent(
                conversation_id=posting.cid,
                message=posting.message,
                client_id=posting.client_id,
                turn_id=turn_id,
            ),
        )
        self.queue.queue(pipe, posting, turn_id, kind, posting.message.id, spec)
        errors = await self.quota.settle(user.id, turn_id, execute(pipe))
        if errors is None:
            return None
        raise_write_error(errors)
        return turn_id

    async def regenerate(
        self, user: UserInfo, session_id: str, frame: RegenerateFrame
    ) -> str | None:
        """A new sibling reply to the user message that ``message_id`` answers.

        ``message_id`` may also name the user message itself (a reply that
        never arrived can be asked for again).
        """
        head = await self.checks.head(user, frame.conversation_id, frame.message_id)
        if head.message_role == "assistant":
            parent_id = head.message_parent_id
        elif head.message_role == "user":
            parent_id = frame.message_id
        else:
            parent_id = None
        if parent_id is None:
            raise ApiError("bad_request", "that message has no question to answer again")
        spec = self.checks.model(frame.model, head.model)
        await self.admission.check(user.id, spec, Adds(messages=1))
        turn_id = new_id()
        guard = self.frames.key(head.id, session_id, frame.client_id)
        if not await self.queue.take_slot(user, turn_id, guard):
            return None
        try:
            fresh = await self.frames.claim(guard, turn_id)
        except BaseException:
            await self.quota.forget(user.id, turn_id)
            raise
        if not fresh:
            await self.quota.forget(user.id, turn_id)
            return None  # a resent duplicate: acted on already
        pipe = self.redis.pipeline(transaction=False)
        # Workers write only to session streams that exist, and no event of the
        # gateway's goes with a regeneration: create this session's stream if
        # it has none (a new tab, or one idle past the TTL), with its TTL.
        queue_session_open(pipe, self.keys, session_id)
        queue_session_ttl(pipe, self.keys, session_id, self.writer.session_ttl)
        storage_usage.queue_add(pipe, self.keys, user.id, messages=1)  # the reply to come
        target = TurnTarget(user, session_id, head.id, head.title, frame.client_id)
        self.queue.queue(pipe, target, turn_id, "regenerate", parent_id, spec)
        errors = await self.quota.settle(user.id, turn_id, execute(pipe))
        if errors is None:
            return None
        raise_write_error(errors[1:])  # the first XADD fails when the stream exists
        return turn_id

    async def stop(self, user: UserInfo, frame: StopFrame) -> None:
        """Ask whichever worker runs (or will run) the turn to stop it.

        Workers only honour a stop from the turn's own user, so no ownership
        lookup is needed here; stopping a finished or unknown turn does nothing.
        Stops are rate-limited per user and announced once per turn
        (``gateway/stops.py``).
        """
        await self.stops.check(user.id)
        if await self.stops.announce(user.id, frame.turn_id):
            # Still waiting in the user's line: onto the stream at once, so a
            # worker ends it (stopped) now rather than after the user's others.
            await self.queue.fair.lift(self.catalog.pools(), user.id, frame.turn_id)
