"""Accepting turns: the one place that turns a ``message``, ``regenerate``,
``edit`` or ``stop`` into Redis writes, for the WebSocket and for
``POST /api/chat`` alike.

Everything a user typed is stored in the conversation first (one script in
the conversation's slot, which also records the frame's ``client_id``: see
``gateway/once.py``), then its ``user_message`` event is written and the
turn queued, in one pipeline: no failure later on can lose what was typed.
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from gateway.admission import Adds, Admission, Quotas
from gateway.attachments import edited_attachments, resolve_attachments
from gateway.errors import ApiError, raise_write_error
from gateway.limits import SessionTtl, TurnQuota
from gateway.once import FrameGuard, conversation_id_for
from gateway.security.sessions import queue_session_ttl
from gateway.stops import StopGate
from shared import storage_usage
from shared.audit import AuditEntry, AuditLog, Party
from shared.conversation import Attachment, Conversation, Message, new_id, now
from shared.fairness import FairLines
from shared.files import FileStore
from shared.keys import Keys
from shared.models_file import ModelCatalog, ModelSpec, UnknownModelError
from shared.moderation import FlagLog, Moderator, Verdict, flagged
from shared.protocol import (
    ConversationCreatedEvent,
    EditFrame,
    ErrorEvent,
    MessageFrame,
    RegenerateFrame,
    StopFrame,
    TurnStartedEvent,
    UserInfo,
    UserMessageEvent,
)
from shared.store import (
    AddResult,
    ConflictError,
    ConversationHead,
    ConversationStore,
    NotFoundError,
    title_from_text,
)
from shared.streams import (
    SessionEvent,
    TurnKind,
    TurnRequest,
    queue_feed_event,
    queue_session_event,
    queue_session_open,
)
from shared.user_limits import TurnLimits


class TurnService:
    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        catalog: ModelCatalog,
        store: ConversationStore,
        *,
        max_message_chars: int,
        limits: TurnLimits,
        max_queued_turns: int,
        session_ttl: int,
        stops_per_minute: int = 0,
        fair_turns_per_user: int = 2,
        max_waiting_per_user: int = 20,
        quotas: Quotas | None = None,
        max_attachments: int = 10,
        audit: AuditLog | None = None,
        moderator: Moderator | None = None,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.store = store
        self.files = FileStore(redis, keys)
        self.max_attachments = max_attachments
        self.catalog = catalog
        self.max_message_chars = max_message_chars
        self.session_ttl = session_ttl
        self.audit = audit or AuditLog(redis, keys)
        self.quota = TurnQuota(redis, keys, limits, audit=self.audit)
        self.admission = Admission(
            redis,
            keys,
            max_queued_turns=max_queued_turns,
            max_waiting_per_user=max_waiting_per_user,
            quotas=quotas or Quotas(),
            audit=self.audit,
        )
        self.moderator = moderator
        self.flags = FlagLog(redis, keys)
        self.fair = FairLines(redis, keys)
        self.fair_turns_per_user = fair_turns_per_user
        self.session_ttls = SessionTtl(session_ttl)
        self.frames = FrameGuard(redis, keys)
        self.stops = StopGate(redis, keys, stops_per_minute)
        self.turns_submitted = 0

    # --- checks ----------------------------------------------------------------

    def _check_content(self, content: str) -> None:
        if not content.strip():
            raise ApiError("bad_request", "the message is empty")
        if len(content) > self.max_message_chars:
            raise ApiError(
                "too_large",
                f"the message has {len(content):,} characters; the limit is "
                f"{self.max_message_chars:,}",
            )

    def _model(self, model_id: str | None, fallback: str | None = None) -> ModelSpec:
        """The model a frame asks for, else the conversation's, else the
        default (also when the conversation's model was retired)."""
        if model_id is None:
            return self.catalog.get(fallback) or self.catalog.default
        try:
            return self.catalog.require(model_id)
        except UnknownModelError as exc:
            raise ApiError("bad_request", exc.message) from exc

    async def _head(self, user: UserInfo, cid: str, message_id: str | None) -> ConversationHead:
        try:
            head = await self.store.owned_head(cid, user.id, message_id)
        except NotFoundError as exc:
            raise ApiError("not_found", "conversation not found") from exc
        if message_id is not None and not head.message_exists:
            raise ApiError("not_found", "message not found in this conversation")
        return head

    async def _attachments(self, user: UserInfo, ids: list[str]) -> list[Attachment]:
        return await resolve_attachments(self.files, user.id, ids, self.max_attachments)

    # --- writes ----------------------------------------------------------------

    def _queue_event(self, pipe: Pipeline, session_id: str, event: SessionEvent) -> None:
        queue_session_event(pipe, self.keys, session_id, event, create=True)

    def _queue_turn(
        self,
        pipe: Pipeline,
        user: UserInfo,
        session_id: str,
        cid: str,
        parent_id: str,
        spec: ModelSpec,
        kind: TurnKind,
        turn_id: str | None = None,
        client_id: str | None = None,
    ) -> str:
        turn = TurnRequest(
            turn_id=turn_id or new_id(),
            kind=kind,
            session_id=session_id,
            user_id=user.id,
            conversation_id=cid,
            parent_id=parent_id,
            model=spec.id,
            client_id=client_id,
        )
        if self.session_ttls.due(session_id):
            queue_session_ttl(pipe, self.keys, session_id, self.session_ttl)
        # Onto the pool's stream, or into the user's own line (shared/fairness.py).
        self.fair.queue_admit(pipe, spec.pool, turn, self.fair_turns_per_user)
        self.turns_submitted += 1
        self.admission.queued(spec.pool)
        return turn.turn_id

    async def _take_slot(self, user: UserInfo, turn_id: str, guard: str | None) -> bool:
        """Take one of the user's turn slots; False if the frame is a resend
        of one already acted on (refused by a limit it must not be: it is
        not a new turn)."""
        try:
            await self.quota.take(user.id, turn_id)
        except ApiError:
            if await self.frames.seen(guard):
                return False
            raise
        return True

    def _queue_turn_started(
        self,
        pipe: Pipeline,
        user: UserInfo,
        session_id: str,
        cid: str,
        title: str,
        spec: ModelSpec,
        turn_id: str,
    ) -> None:
        """Tell the user's other tabs (``gateway/live.py``): their sidebars
        move the conversation up, and those showing it follow the turn on
        this session's stream."""
        event = TurnStartedEvent(
            turn_id=turn_id, conversation_id=cid, title=title, model=spec.id, updated_at=now()
        )
        queue_feed_event(pipe, self.keys, user.id, event, session_id=session_id)

    async def message(self, user: UserInfo, session_id: str, frame: MessageFrame) -> str | None:
        """A new user message and a turn to answer it; returns the turn id
        (None: a resent duplicate, ignored)."""
        self._check_content(frame.content)
        attachments = await self._attachments(user, frame.attachments)
        verdict = await self._moderate(frame.content)
        # The message and the reply to come; a blocked message gets none.
        count = 1 if verdict else 2
        blocked = verdict.reason if verdict else None
        nbytes = storage_usage.text_bytes(frame.content)
        created: Conversation | None = None
        model_change: str | None = None
        expected: str | None = None
        if frame.conversation_id is None:
            spec = self._model(frame.model)
            _check_images(spec, attachments)
            await self.admission.check(user.id, spec, Adds(1, count, nbytes))
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
            message = Message(
                id=new_id(),
                role="user",
                content=frame.content,
                created_at=ts,
                attachments=attachments,
                blocked=blocked,
            )
            title = created.title
        else:
            cid = frame.conversation_id
            head = await self._head(user, cid, frame.parent_id)
            title = head.title
            # Checked by the script that stores the message: if another tab
            # got a message in first, nothing is stored (no silent fork).
            expected = frame.parent_id
            spec = self._model(frame.model, head.model)
            _check_images(spec, attachments)
            await self.admission.check(user.id, spec, Adds(messages=count, bytes=nbytes))
            message = Message(
                id=new_id(),
                parent_id=frame.parent_id or head.current_id,
                role="user",
                content=frame.content,
                attachments=attachments,
                blocked=blocked,
            )
            if frame.model and frame.model != head.model:
                model_change = spec.id
        if verdict is not None:
            await self._blocked(
                user,
                session_id,
                cid,
                message,
                verdict,
                frame.client_id,
                created=created,
                model_change=model_change,
                expected=expected,
            )
            return None
        return await self._submit(
            user,
            session_id,
            cid,
            title,
            message,
            spec,
            "message",
            frame.client_id,
            created,
            model_change,
            expected,
        )

    async def edit(self, user: UserInfo, session_id: str, frame: EditFrame) -> str | None:
        """A sibling of a user message with new content, and a turn to answer it."""
        self._check_content(frame.content)
        head = await self._head(user, frame.conversation_id, frame.message_id)
        if head.message_role != "user":
            raise ApiError("bad_request", "only your own messages can be edited")
        spec = self._model(frame.model, head.model)
        # The edited question keeps the original's files unless the frame names others.
        attachments = await edited_attachments(
            self.files,
            self.store,
            user.id,
            head.id,
            frame.message_id,
            frame.attachments,
            self.max_attachments,
        )
        _check_images(spec, attachments)
        verdict = await self._moderate(frame.content)
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
        if verdict is not None:
            await self._blocked(user, session_id, head.id, message, verdict, frame.client_id)
            return None
        return await self._submit(
            user, session_id, head.id, head.title, message, spec, "edit", frame.client_id
        )

    async def _store_message(
        self,
        user: UserInfo,
        cid: str,
        message: Message,
        guard: str | None,
        created: Conversation | None,
        model_change: str | None,
        expected: str | None,
    ) -> AddResult:
        """The user's message, first and on its own (with the frame's marker)."""
        pipe = self.redis.pipeline(transaction=False)
        self.store.queue_add_message(
            pipe,
            cid,
            message,
            owner=user.id,
            bump=True,
            marker=guard,
            marker_ttl=self.frames.ttl,
            create=created,
            expect_current=expected,
        )
        if model_change is not None:
            self.store.queue_update(pipe, cid, user.id, {"model": model_change})
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

    async def _moderate(self, content: str) -> Verdict | None:
        if self.moderator is None or not self.moderator.applies("input"):
            return None
        return await self.moderator.check(content, "input")

    async def _blocked(
        self,
        user: UserInfo,
        session_id: str,
        cid: str,
        message: Message,
        verdict: Verdict,
        client_id: str | None,
        *,
        created: Conversation | None = None,
        model_change: str | None = None,
        expected: str | None = None,
    ) -> None:
        """Store a message the moderation hook blocked (marked, never
        answered), tell the session (the message, then ``error`` ``blocked``
        with the admin's reason), and list it for review: no turn is queued.
        Stored like any message (the frame's marker, the stale-parent check)."""
        guard = self.frames.key(cid, session_id, client_id)
        added = await self._store_message(
            user, cid, message, guard, created, model_change, expected
        )
        if added.status == 0:
            return  # a resent duplicate: acted on already
        pipe = self.redis.pipeline(transaction=False)
        self._queue_stored(pipe, user, session_id, message, created, messages=1)
        if self.session_ttls.due(session_id):
            queue_session_ttl(pipe, self.keys, session_id, self.session_ttl)
        self._queue_event(
            pipe,
            session_id,
            UserMessageEvent(conversation_id=cid, message=message, client_id=client_id),
        )
        self._queue_event(
            pipe,
            session_id,
            ErrorEvent(
                code="blocked", message=verdict.reason, conversation_id=cid, client_id=client_id
            ),
        )
        self.flags.queue(
            pipe,
            flagged(
                verdict,
                direction="input",
                user_id=user.id,
                username=user.username,
                conversation_id=cid,
                message_id=message.id,
                text=message.content,
            ),
        )
        self.audit.queue(
            pipe,
            AuditEntry(
                kind="moderation.blocked",
                actor=Party(id=user.id, name=user.username),
                detail={"direction": "input", "rule": verdict.rule, "conversation_id": cid},
            ),
        )
        raise_write_error(await self._execute(pipe))

    def _queue_stored(
        self,
        pipe: Pipeline,
        user: UserInfo,
        session_id: str,
        message: Message,
        created: Conversation | None,
        *,
        messages: int,
    ) -> None:
        """What follows a stored user message: the user's storage counters,
        and for a new conversation its ``conversation_created`` (to this
        session and the user's other tabs)."""
        storage_usage.queue_add(
            pipe,
            self.keys,
            user.id,
            conversations=1 if created is not None else 0,
            messages=messages,
            nbytes=storage_usage.text_bytes(message.content),
        )
        if created is not None:
            event = ConversationCreatedEvent(conversation=created.view())
            self._queue_event(pipe, session_id, event)
            queue_feed_event(pipe, self.keys, user.id, event)

    async def _submit(
        self,
        user: UserInfo,
        session_id: str,
        cid: str,
        title: str,
        message: Message,
        spec: ModelSpec,
        kind: TurnKind,
        client_id: str | None,
        created: Conversation | None = None,
        model_change: str | None = None,
        expected: str | None = None,
    ) -> str | None:
        turn_id = new_id()
        guard = self.frames.key(cid, session_id, client_id)
        if not await self._take_slot(user, turn_id, guard):
            return None  # a resent duplicate: acted on already
        try:
            added = await self._store_message(
                user, cid, message, guard, created, model_change, expected
            )
        except BaseException:
            await self.quota.forget(user.id, turn_id)
            raise
        if added.status == 0:
            await self.quota.forget(user.id, turn_id)
            return None  # a resent duplicate: acted on already
        pipe = self.redis.pipeline(transaction=False)
        # Two messages: this one and its reply (the worker adds the reply's
        # bytes, or takes the message back if it stores none).
        self._queue_stored(pipe, user, session_id, message, created, messages=2)
        self._queue_event(
            pipe,
            session_id,
            UserMessageEvent(
                conversation_id=cid, message=message, client_id=client_id, turn_id=turn_id
            ),
        )
        self._queue_turn_started(pipe, user, session_id, cid, title, spec, turn_id)
        self._queue_turn(pipe, user, session_id, cid, message.id, spec, kind, turn_id, client_id)
        errors = await self.quota.settle(user.id, turn_id, self._execute(pipe))
        if errors is None:
            return None
        raise_write_error(errors)
        return turn_id

    @staticmethod
    async def _execute(pipe: Pipeline) -> list[Exception | None]:
        results = await pipe.execute(raise_on_error=False)
        return [r if isinstance(r, Exception) else None for r in results]

    async def regenerate(
        self, user: UserInfo, session_id: str, frame: RegenerateFrame
    ) -> str | None:
        """A new sibling reply to the user message that ``message_id`` answers.

        ``message_id`` may also name the user message itself (a reply that
        never arrived can be asked for again).
        """
        head = await self._head(user, frame.conversation_id, frame.message_id)
        if head.message_role == "assistant":
            parent_id = head.message_parent_id
        elif head.message_role == "user":
            parent_id = frame.message_id
        else:
            parent_id = None
        if parent_id is None:
            raise ApiError("bad_request", "that message has no question to answer again")
        spec = self._model(frame.model, head.model)
        await self.admission.check(user.id, spec, Adds(messages=1))
        turn_id = new_id()
        guard = self.frames.key(head.id, session_id, frame.client_id)
        if not await self._take_slot(user, turn_id, guard):
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
        queue_session_ttl(pipe, self.keys, session_id, self.session_ttl)
        storage_usage.queue_add(pipe, self.keys, user.id, messages=1)  # the reply to come
        self._queue_turn_started(pipe, user, session_id, head.id, head.title, spec, turn_id)
        self._queue_turn(
            pipe,
            user,
            session_id,
            head.id,
            parent_id,
            spec,
            "regenerate",
            turn_id,
            client_id=frame.client_id,
        )
        errors = await self.quota.settle(user.id, turn_id, self._execute(pipe))
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
            await self.fair.lift(self.catalog.pools(), user.id, frame.turn_id)


def _check_images(spec: ModelSpec, attachments: list[Attachment]) -> None:
    """A model without ``vision`` is never sent an image: refused here, and
    the composer says so before sending."""
    if not spec.vision and any(a.kind == "image" for a in attachments):
        raise ApiError(
            "bad_request", f"{spec.display_name} cannot see images; choose a model that can"
        )
