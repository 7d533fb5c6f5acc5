"""Running one turn: load the branch, build the prompt, stream the reply to
the session, then end it (``finish.py``: store it, acknowledge).

Around the model call: what the turn reads besides its branch
(``turn_inputs.py``: documents, images), the multi-step tool loop for a
model with tools (``worker/tools``), and what is done with the reply
(``after_reply.py``: moderation before it is stored, the title after).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from redis.asyncio import Redis

from shared.conversation import Usage
from shared.keys import CONTEXT_OVERFETCH, Keys
from shared.models_file import ModelCatalog, ModelSpec, UnknownModelError
from shared.protocol import StreamChunkEvent, StreamRestartEvent, StreamStartEvent
from shared.store import ConversationStore, TurnContext
from shared.streams import SessionEvent
from shared.tokens import estimate_tokens
from worker.after_reply import AfterReply
from worker.backends import Backend, BackendPool, GenerationRequest, prompt_framing
from worker.cancel import CancelWatcher
from worker.config import WorkerSettings
from worker.context import SAFETY_MARGIN_TOKENS, Prompt, build_prompt
from worker.documents.embed import Embedder, make_settings_embedder
from worker.documents.retrieve import DocumentRetriever
from worker.errors import Blocked, ConversationGone, UnknownModel
from worker.finish import ReceivedTurn, TurnEnd, failed_reply, queue_event, reply_message
from worker.generate import Outcome, RetryPolicy, generate
from worker.tools import ToolLoop, history_messages
from worker.tools.fence import Answered, Superseded
from worker.turn_inputs import TurnInputs

__all__ = ["ReceivedTurn", "TurnRunner"]

log = logging.getLogger(__name__)


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
        self.redis, self.keys, self.settings = redis, keys, settings
        self.catalog, self.backends, self.cancels = catalog, backends, cancels
        self.store = ConversationStore(redis, keys)
        self.policy = RetryPolicy(
            settings.backend_retries, settings.retry_base_seconds, settings.retry_max_seconds
        )
        # Tools (issue 15): the multi-step tool loop, for models with tools.
        self.tools = ToolLoop.from_file(
            redis, keys, settings.tools, settings.tool_approval_timeout_seconds
        )
        documents = DocumentRetriever(redis, keys, embedder or make_settings_embedder(settings))
        self.inputs = TurnInputs(keys, documents, raw)
        self.after = AfterReply(self.store, catalog, settings.audit_maxlen)
        self.end = TurnEnd(redis, keys, self.store, settings)
        self.fair = self.end.fair
        self.finish = self.end.finish
        self.reject_poison = self.end.reject_poison
        self.reject_malformed = self.end.reject_malformed

    async def _send(self, d: ReceivedTurn, event: SessionEvent) -> None:
        await queue_event(self.redis, self.keys, d.turn, event)

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
            restart = StreamRestartEvent(turn_id=turn.turn_id, reason=d.restart_reason)
            queue_event(pipe, self.keys, turn, restart)
        about = {"parent_id": turn.parent_id, "model": turn.model, "client_id": turn.client_id}
        start = StreamStartEvent(message_id=turn.turn_id, **d.ids, **about)
        queue_event(pipe, self.keys, turn, start)
        results = await pipe.execute()
        context = await self.store.finish_context(
            turn.conversation_id, turn.turn_id, results[0], budget=budget
        )
        stop = self.cancels.watch(turn.turn_id, turn.user_id)
        if check_cancel and results[1] == turn.user_id:
            stop.set()
        try:
            await self._run(d, context, stop)
        except Superseded:
            # Not a failure: the turn is the other worker's now (it looked
            # dead: a long pause); this one stored and sent nothing.
            log.info("turn %s: taken over by another worker; this one stops", turn.turn_id)
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
            await self.finish(d, failed_reply(d, refused), refused)
            return
        try:
            spec = self.catalog.require(turn.model)
        except UnknownModelError:
            unknown = UnknownModel(f"model {turn.model!r} is no longer offered")
            await self.finish(d, failed_reply(d, unknown), unknown)
            return
        backend = self.backends.get(spec)
        await backend.load()
        # Tools (issue 15): a model with tools runs the multi-step loop, and
        # sees earlier replies' tool steps.
        servers = self.tools.servers_for(spec.id, backend)
        docs = await self.inputs.documents_for(
            turn.user_id, spec, backend, branch, turn.conversation_id
        )
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
        images = await self.inputs.images(spec, branch[-1], turn.user_id)
        steps, checkpoint = None, None
        room = spec.context_window - spec.max_tokens - SAFETY_MARGIN_TOKENS - prompt.tokens
        if servers:
            try:
                outcome, steps, checkpoint = await self.tools.run(
                    turn,
                    servers,
                    prompt.messages,
                    lambda messages, tools: self._request(spec, messages, tools, images),
                    lambda request: self._stream(d, backend, request, stop),
                    lambda event: self._send(d, event),
                    stop,
                    room=room,
                )
            except Answered:  # by an earlier delivery, since this one read the branch
                stored = await self.store.message(turn.conversation_id, turn.turn_id)
                if stored is None:  # and deleted since
                    await self.finish(d, None, ConversationGone("the conversation was deleted"))
                else:
                    await self.finish(d, stored, None, new=False)
                return
        else:
            request = self._request(spec, prompt.messages, None, images)
            outcome = await self._stream(d, backend, request, stop)
        usage = outcome.usage or self._count_usage(backend, prompt, outcome.text)
        reply = reply_message(
            d, outcome.text, outcome.finish_reason, usage, outcome.error, prompt.notice
        )
        reply.steps = steps or None
        reply.citations = docs.citations
        if docs.notice:
            reply.notice = " ".join(filter(None, [reply.notice, docs.notice]))
        reply = await self.after.moderate(turn, reply)
        first_reply = await self.finish(d, reply, outcome.error, checkpoint=checkpoint)
        if first_reply and reply.finish_reason != "error":
            await self.after.title(turn, spec, backend, branch[-1].content, reply.content)

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
        turn_id = d.turn.turn_id

        async def send_chunk(text: str) -> None:
            await self._send(d, StreamChunkEvent(turn_id=turn_id, chunk=text))

        async def send_restart(reason: str) -> None:
            await self._send(d, StreamRestartEvent(turn_id=turn_id, reason=reason))

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

    def _count_usage(self, backend: Backend, prompt: Prompt, text: str) -> Usage:
        counted = backend.count_tokens(text)
        return Usage(
            prompt_tokens=prompt.tokens,
            completion_tokens=counted if counted is not None else estimate_tokens(text),
            estimated=counted is None,
        )
