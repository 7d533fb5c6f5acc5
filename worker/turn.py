"""Running one turn: load the branch, build the prompt, stream the reply to
the session, store it, acknowledge.

The assistant message a turn produces has the id ``turn_id``. Storing it is
one ``JSON.MSET`` in the same pipeline as ``stream_end`` and the XACK, so a
worker that dies before the pipeline leaves the turn pending for another
worker, and one that dies after it leaves nothing to redo; a turn delivered
again after its reply was stored only re-sends ``stream_end``.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from shared import storage_usage
from shared.audit import AuditEntry, AuditLog, Party
from shared.conversation import ErrorInfo, Message, Usage, now
from shared.fairness import FairLines
from shared.keys import CONTEXT_OVERFETCH, Keys
from shared.models_file import ModelCatalog, ModelSpec, UnknownModelError
from shared.moderation import FlagLog, Moderator, flagged
from shared.protocol import (
    ErrorEvent,
    StreamChunkEvent,
    StreamEndEvent,
    StreamRestartEvent,
    StreamStartEvent,
    TitleEvent,
)
from shared.store import AddResult, ConversationStore, TurnContext, title_from_text
from shared.streams import (
    DeadLetter,
    SessionEvent,
    TurnRequest,
    queue_dead_letter,
    queue_feed_event,
    queue_session_event,
)
from shared.tokens import estimate_tokens
from shared.user_limits import UsageRecorder
from worker.backends import Backend, BackendPool, GenerationRequest, prompt_framing
from worker.cancel import CancelWatcher
from worker.config import WorkerSettings
from worker.context import SAFETY_MARGIN_TOKENS, Prompt, build_prompt
from worker.documents.embed import Embedder, make_settings_embedder
from worker.documents.retrieve import DocumentContext, DocumentRetriever
from worker.errors import Blocked, ConversationGone, PoisonTurn, TurnError, UnknownModel
from worker.generate import Outcome, RetryPolicy, generate
from worker.title import make_title
from worker.tools import ToolLoop, history_messages

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ReceivedTurn:
    """A turn as this worker received it from the prompt stream."""

    entry_id: str
    pool: str
    turn: TurnRequest
    deliveries: int = 1
    #: Set when the turn was taken over from another worker.
    restart_reason: str | None = None


class TurnRunner:
    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        catalog: ModelCatalog,
        backends: BackendPool,
        cancels: CancelWatcher,
        settings: WorkerSettings,
        embedder: Embedder | None = None,
        raw: Redis | None = None,
    ) -> None:
        self.redis = redis
        #: A client without response decoding: image bytes for vision models.
        self.raw = raw
        self.keys = keys
        self.store = ConversationStore(redis, keys)
        self.fair = FairLines(redis, keys)
        self.catalog = catalog
        self.backends = backends
        self.cancels = cancels
        self.settings = settings
        self.policy = RetryPolicy(
            settings.backend_retries, settings.retry_base_seconds, settings.retry_max_seconds
        )
        self.usage = UsageRecorder(keys)
        self.moderator = Moderator(catalog.moderation)
        self.flags = FlagLog(redis, keys)
        self.audit = AuditLog(redis, keys, settings.audit_maxlen)
        # Tools (issue 15): the multi-step tool loop, for models with tools.
        self.tools = ToolLoop.from_file(
            redis, keys, settings.tools, settings.tool_approval_timeout_seconds
        )
        self.documents = DocumentRetriever(
            redis, keys, embedder or make_settings_embedder(settings)
        )

    # --- events ------------------------------------------------------------

    def _queue_event(self, target: Any, session_id: str, event: SessionEvent) -> Any:
        """The event on ``target`` (a pipeline, or the client: returns the
        awaitable); never creating the stream (``queue_session_event``)."""
        return queue_session_event(target, self.keys, session_id, event, create=False)

    async def _send(self, session_id: str, event: SessionEvent) -> None:
        await self._queue_event(self.redis, session_id, event)

    # --- the turn ------------------------------------------------------------

    async def run(self, d: ReceivedTurn) -> None:
        turn = d.turn
        # One round trip: read what the turn needs (the branch up from the
        # question, as far as the model's context reaches: one script in the
        # conversation's slot) and, optimistically, tell the client its reply
        # has started (the conversation almost always exists; when it does
        # not, an error follows).
        spec = self.catalog.get(turn.model)
        window = spec.context_window if spec is not None else self.catalog.default.context_window
        pipe = self.redis.pipeline(transaction=False)
        budget = int(window * CONTEXT_OVERFETCH)
        self.store.queue_context(
            pipe, turn.conversation_id, turn.parent_id, turn.turn_id, budget=budget
        )
        check_cancel = self.cancels.may_have_missed(turn.created_at)
        if check_cancel:
            pipe.get(self.keys.cancel(turn.turn_id))
        if d.restart_reason:
            self._queue_event(
                pipe,
                turn.session_id,
                StreamRestartEvent(turn_id=turn.turn_id, reason=d.restart_reason),
            )
        self._queue_event(
            pipe,
            turn.session_id,
            StreamStartEvent(
                turn_id=turn.turn_id,
                conversation_id=turn.conversation_id,
                message_id=turn.turn_id,
                parent_id=turn.parent_id,
                model=turn.model,
                client_id=turn.client_id,
            ),
        )
        results = await pipe.execute()
        context = await self.store.finish_context(
            turn.conversation_id, turn.turn_id, results[0], budget=budget
        )
        stop = self.cancels.watch(turn.turn_id, turn.user_id)
        if check_cancel and results[1] == turn.user_id:
            stop.set()
        try:
            await self._run(d, context, stop)
        finally:
            self.cancels.unwatch(turn.turn_id)

    async def _run(self, d: ReceivedTurn, context: TurnContext | None, stop: asyncio.Event) -> None:
        turn = d.turn
        if context is None or context.owner != turn.user_id:
            await self.finish(d, None, ConversationGone("the conversation no longer exists"))
            return
        if context.stored_reply is not None:
            # Stored by an earlier delivery that died before acknowledging.
            await self.finish(d, context.stored_reply, None, new=False)
            return
        branch = context.branch
        if not branch:
            await self.finish(d, None, ConversationGone("the message to answer no longer exists"))
            return
        if branch[-1].blocked:
            refused = Blocked(branch[-1].blocked)
            await self.finish(d, self.reply_message(d, "", "error", None, refused, None), refused)
            return
        try:
            spec = self.catalog.require(turn.model)
        except UnknownModelError:
            unknown = UnknownModel(f"model {turn.model!r} is no longer offered")
            await self.finish(d, self.reply_message(d, "", "error", None, unknown, None), unknown)
            return
        backend = self.backends.get(spec)
        await backend.load()
        # Tools (issue 15): a model with tools runs the multi-step loop, and
        # sees earlier replies' tool steps.
        servers = self.tools.servers_for(spec.id, backend)
        docs = await self._documents(turn.user_id, spec, backend, branch, turn.conversation_id)
        sent = branch
        if docs.question is not None:
            sent = [*branch[:-1], branch[-1].model_copy(update={"content": docs.question})]
        prompt = build_prompt(
            spec,
            context.system_prompt,
            sent,
            backend.count_tokens,
            prompt_framing(backend),
            expand=history_messages if servers else None,
            complete=context.complete,
        )
        images = await self._images(spec, branch[-1], turn.user_id)
        steps = None
        if servers:
            outcome, steps = await self.tools.run(
                turn,
                servers,
                prompt.messages,
                lambda messages, tools: self._request(spec, messages, tools, images),
                lambda request: self._stream(d, backend, request, stop),
                lambda event: self._send(turn.session_id, event),
                stop,
                room=spec.context_window - spec.max_tokens - SAFETY_MARGIN_TOKENS - prompt.tokens,
            )
        else:
            outcome = await self._generate(d, spec, backend, prompt, stop, images)
        usage = outcome.usage or self._count_usage(backend, prompt, outcome.text)
        reply = self.reply_message(
            d, outcome.text, outcome.finish_reason, usage, outcome.error, prompt
        )
        reply.steps = steps or None
        reply.citations = docs.citations
        if docs.notice:
            reply.notice = " ".join(filter(None, [reply.notice, docs.notice]))
        reply = await self._moderate(d, reply)
        first_reply = await self.finish(d, reply, outcome.error)
        if first_reply and reply.finish_reason != "error":
            await self._title(d, spec, backend, branch[-1].content, reply.content)

    async def _documents(
        self, owner: str, spec: ModelSpec, backend: Backend, branch: list[Message], cid: str
    ) -> DocumentContext:
        """The attachments' passages for this turn (``worker/documents/retrieve.py``)."""

        def count(text: str) -> int:
            counted = backend.count_tokens(text)
            return counted if counted is not None else estimate_tokens(text)

        budget = spec.context_window - spec.max_tokens - SAFETY_MARGIN_TOKENS
        return await self.documents.context(owner, branch, budget, count, cid)

    async def _images(self, spec: ModelSpec, question: Message, owner: str) -> list[str]:
        """The question's attached images as data URLs, for a vision model
        (the gateway refuses images for the others). Only the question's:
        earlier images would fill the context turn after turn."""
        wanted = [a for a in question.attachments if a.kind == "image"]
        if not wanted or not spec.vision or self.raw is None:
            return []
        owners = await self.documents.files.many([a.file_id for a in wanted])
        urls: list[str] = []
        for a, record in zip(wanted, owners, strict=True):
            if record is None or record.owner != owner:
                continue
            data = await self.raw.get(self.keys.file_bytes(a.file_id))
            if isinstance(data, bytes):
                urls.append(f"data:{record.mime};base64,{base64.b64encode(data).decode()}")
        return urls

    async def _generate(
        self,
        d: ReceivedTurn,
        spec: ModelSpec,
        backend: Backend,
        prompt: Prompt,
        stop: asyncio.Event,
        images: list[str] | None = None,
    ) -> Outcome:
        request = self._request(spec, prompt.messages, None, images)
        return await self._stream(d, backend, request, stop)

    def _request(
        self,
        spec: ModelSpec,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        images: list[str] | None = None,
    ) -> GenerationRequest:
        return GenerationRequest(
            messages=messages,
            max_tokens=spec.max_tokens,
            temperature=spec.temperature,
            top_p=spec.top_p,
            stop=list(spec.stop),
            tools=tools,
            images=images or [],
        )

    async def _stream(
        self, d: ReceivedTurn, backend: Backend, request: GenerationRequest, stop: asyncio.Event
    ) -> Outcome:
        turn = d.turn

        async def send_chunk(text: str) -> None:
            await self._send(turn.session_id, StreamChunkEvent(turn_id=turn.turn_id, chunk=text))

        async def send_restart(reason: str) -> None:
            await self._send(
                turn.session_id, StreamRestartEvent(turn_id=turn.turn_id, reason=reason)
            )

        return await generate(
            backend,
            request,
            send_chunk=send_chunk,
            send_restart=send_restart,
            stop=stop,
            policy=self.policy,
            idle_timeout=self.settings.idle_timeout_seconds,
            total_timeout=self.settings.turn_timeout_seconds,
        )

    async def _moderate(self, d: ReceivedTurn, reply: Message) -> Message:
        """The moderation hook on a completed reply: a blocked one keeps its
        place in the conversation, with its text withheld and the admin's
        reason (clients replace the streamed text with ``stream_end``'s)."""
        if not reply.content or not self.moderator.applies("output"):
            return reply
        verdict = await self.moderator.check(reply.content, "output")
        if verdict is None:
            return reply
        turn = d.turn
        pipe = self.redis.pipeline(transaction=False)
        self.flags.queue(
            pipe,
            flagged(
                verdict,
                direction="output",
                user_id=turn.user_id,
                conversation_id=turn.conversation_id,
                message_id=turn.turn_id,
                model=turn.model,
                text=reply.content,
            ),
        )
        self.audit.queue(
            pipe,
            AuditEntry(
                kind="moderation.blocked",
                target=Party(id=turn.user_id),
                detail={
                    "direction": "output",
                    "rule": verdict.rule,
                    "conversation_id": turn.conversation_id,
                    "model": turn.model,
                },
            ),
        )
        await pipe.execute()
        return reply.model_copy(update={"content": "", "blocked": verdict.reason, "citations": []})

    def _count_usage(self, backend: Backend, prompt: Prompt, text: str) -> Usage:
        counted = backend.count_tokens(text)
        return Usage(
            prompt_tokens=prompt.tokens,
            completion_tokens=counted if counted is not None else estimate_tokens(text),
            estimated=counted is None,
        )

    def reply_message(
        self,
        d: ReceivedTurn,
        text: str,
        finish_reason: Any,
        usage: Usage | None,
        error: TurnError | None,
        prompt: Prompt | None,
    ) -> Message:
        return Message(
            id=d.turn.turn_id,
            parent_id=d.turn.parent_id,
            role="assistant",
            content=text,
            model=d.turn.model,
            finish_reason=finish_reason,
            usage=usage,
            created_at=now(),
            error=ErrorInfo(code=error.code, message=error.message) if error else None,
            notice=prompt.notice if prompt else None,
        )

    async def finish(
        self,
        d: ReceivedTurn,
        reply: Message | None,
        error: TurnError | None,
        *,
        dead: bool | None = None,
        new: bool = True,
    ) -> bool:
        """Store the reply, tell the client, free the user's turn slot and
        count the usage, acknowledge: one pipeline.

        ``reply`` None: nothing to store (the conversation is gone); the
        client gets the error and a ``stream_end`` with an empty failed reply.
        ``dead``: also record the turn on the dead-letter stream (default: when
        the error was retryable, i.e. retries ran out). ``new``: the reply was
        not stored by an earlier delivery, so it counts toward its user's
        storage. Acknowledging also hands the turn's slot to its user's next
        waiting turn (``shared/fairness.py``). Returns whether the reply was
        the conversation's first (then the worker makes a title)."""
        if dead is None:
            dead = error is not None and error.retryable
        turn = d.turn
        pipe = self.redis.pipeline(transaction=False)
        # The gateway counted this reply as a message when it queued the turn;
        # its text is counted here, once (not again for a reply re-sent).
        nbytes = _stored_text_bytes(reply) if reply is not None and new else 0
        stored = reply is not None
        if reply is not None:
            self.store.queue_add_message(pipe, turn.conversation_id, reply, owner=turn.user_id)
            storage_usage.queue_add(pipe, self.keys, turn.user_id, nbytes=nbytes)
        else:
            storage_usage.queue_add(pipe, self.keys, turn.user_id, messages=-1)  # none to store
            reply = self.reply_message(d, "", "error", None, error, None)
        if error is not None:
            self._queue_event(
                pipe,
                turn.session_id,
                ErrorEvent(
                    code=error.code,
                    message=error.message,
                    turn_id=turn.turn_id,
                    conversation_id=turn.conversation_id,
                ),
            )
            if dead:
                self._queue_dead(pipe, d, error)
        self._queue_event(
            pipe,
            turn.session_id,
            StreamEndEvent(
                turn_id=turn.turn_id, conversation_id=turn.conversation_id, message=reply
            ),
        )
        spent = reply.usage
        release = self.usage.queue_release(
            pipe,
            turn.user_id,
            turn.turn_id,
            turn.model,
            spent.prompt_tokens if spent else 0,
            spent.completion_tokens if spent else 0,
        )
        self.fair.queue_release(
            pipe, d.pool, d.entry_id, turn.user_id, self.settings.fair_turns_per_user
        )
        results = await pipe.execute(raise_on_error=False)
        await self.usage.count_total(self.redis, release, results)
        if not stored:
            return False
        added = results[0]
        if isinstance(added, Exception):
            raise added
        result = AddResult.parse(added)
        if result.status != 1:
            # The conversation was deleted while the reply was generated.
            log.info("turn %s: reply not stored (conversation gone)", turn.turn_id)
            if new:  # nothing was stored: take back what was counted for it
                undo = self.redis.pipeline(transaction=False)
                storage_usage.queue_add(undo, self.keys, turn.user_id, messages=-1, nbytes=-nbytes)
                await undo.execute()
            return False
        return result.first_reply

    async def reject_poison(self, d: ReceivedTurn) -> None:
        """A turn delivered past the limit (its workers kept dying on it):
        stored as failed, the client told, and dead-lettered, not run."""
        error = PoisonTurn(
            f"this reply failed {d.deliveries - 1} times (its workers stopped while "
            "generating it); it was set aside"
        )
        reply = self.reply_message(d, "", "error", None, error, None)
        await self.finish(d, reply, error, dead=True)
        await self.redis.hincrby(self.keys.metrics(d.pool), "dead_letters", 1)

    async def reject_malformed(
        self, pool: str, entry_id: str, fields: dict[str, str], why: str
    ) -> None:
        """A prompt-stream entry that is not a turn: kept as a dead letter
        without one, and acknowledged."""
        pipe = self.redis.pipeline(transaction=False)
        letter = DeadLetter(
            turn=None,
            code="bad_request",
            error=f"not a turn: {why}"[:1000],
            deliveries=1,
            entry_id=entry_id,
            raw=str(fields)[:10_000],
        )
        queue_dead_letter(pipe, self.keys, pool, letter)
        # Its user is unknown: a slot it held is given back (not passed on;
        # the fair-line repair moves that user's line on).
        self.fair.queue_release(pipe, pool, entry_id, "", self.settings.fair_turns_per_user)
        await pipe.execute()

    def _queue_dead(self, pipe: Any, d: ReceivedTurn, error: TurnError) -> None:
        letter = DeadLetter(
            turn=d.turn,
            code=error.code,
            error=error.message,
            deliveries=d.deliveries,
            entry_id=d.entry_id,
        )
        queue_dead_letter(pipe, self.keys, d.pool, letter)

    async def _title(
        self, d: ReceivedTurn, spec: ModelSpec, backend: Backend, question: str, answer: str
    ) -> None:
        fallback = title_from_text(question)
        title = fallback
        if spec.auto_title:
            made = await make_title(backend, question, answer)
            title = made or title
        # A title the user chose while the first reply was on its way wins.
        if not await self.store.set_title(d.turn.conversation_id, title, fallback):
            return
        pipe = self.redis.pipeline(transaction=False)
        event = TitleEvent(conversation_id=d.turn.conversation_id, title=title)
        self._queue_event(pipe, d.turn.session_id, event)
        # Every tab of the user lists the conversation under its title.
        queue_feed_event(pipe, self.keys, d.turn.user_id, event)
        await pipe.execute(raise_on_error=False)


def _stored_text_bytes(reply: Message) -> int:
    """What a reply stores for its user's quota: its text, and the passages
    it cites (up to a few KB each), which live in the same document."""
    return storage_usage.text_bytes(reply.content) + sum(
        storage_usage.text_bytes(c.text) for c in reply.citations
    )
