"""Ending a turn: store the reply, tell the client, free the user's turn
slot, count the usage, acknowledge (``TurnEnd.finish``); and the turns that
are ended without running (poison, malformed entries).

The assistant message a turn produces has the id ``turn_id``. Storing it is
one script in the same pipeline as ``stream_end`` and the XACK, so a worker
that dies before the pipeline leaves the turn pending for another worker,
and one that dies after it leaves nothing to redo; a turn delivered again
after its reply was stored only re-sends ``stream_end``. A tool turn's reply
is written first, on its own, in one transaction with its fence check
(``worker/tools/fence.py``): a worker that lost the turn to a takeover
stores nothing and sends nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from shared import storage_usage
from shared.conversation import ErrorInfo, Message, Usage, now
from shared.fairness import FairLines
from shared.keys import Keys
from shared.protocol import ErrorEvent, StreamEndEvent
from shared.store import AddResult, ConversationStore
from shared.streams import DeadLetter, SessionEvent, TurnRequest, queue_dead_letter
from shared.streams import queue_session_event as _queue_session_event
from shared.user_limits import UsageRecorder
from worker.config import WorkerSettings
from worker.errors import PoisonTurn, TurnError
from worker.running import Delivery
from worker.tools.checkpoint import Checkpoint

log = logging.getLogger(__name__)


@dataclass(slots=True, frozen=True)
class ReceivedTurn(Delivery):
    """A turn as this worker received it from the prompt stream."""

    turn: TurnRequest

    @property
    def ids(self) -> dict[str, str]:
        """The fields every event that ends the turn names it by."""
        return {"turn_id": self.turn.turn_id, "conversation_id": self.turn.conversation_id}


def queue_event(target: Any, keys: Keys, turn: TurnRequest, event: SessionEvent) -> Any:
    """The event on the turn's session stream, on ``target`` (a pipeline, or
    the client: returns the awaitable); never creating the stream."""
    return _queue_session_event(target, keys, turn.session_id, event, create=False)


def reply_message(
    d: ReceivedTurn,
    text: str,
    finish_reason: Any,
    usage: Usage | None,
    error: TurnError | None,
    notice: str | None = None,
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
        notice=notice,
    )


def failed_reply(d: ReceivedTurn, error: TurnError) -> Message:
    return reply_message(d, "", "error", None, error)


class TurnEnd:
    def __init__(
        self, redis: Redis, keys: Keys, store: ConversationStore, settings: WorkerSettings
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.store = store
        self.settings = settings
        self.usage = UsageRecorder(keys)
        self.fair = FairLines(redis, keys)

    async def finish(
        self,
        d: ReceivedTurn,
        reply: Message | None,
        error: TurnError | None,
        *,
        dead: bool | None = None,
        new: bool = True,
        checkpoint: Checkpoint | None = None,
    ) -> bool:
        """Store the reply, tell the client, free the user's turn slot and
        count the usage, acknowledge: one pipeline.

        ``reply`` None: nothing to store (the conversation is gone); the
        client gets the error and a ``stream_end`` with an empty failed reply.
        ``dead``: also record the turn on the dead-letter stream (default: when
        the error was retryable, i.e. retries ran out). ``new``: the reply was
        not stored by an earlier delivery, so it counts toward its user's
        storage. ``checkpoint``: a tool turn's, whose fence the reply's write
        checks (``Superseded``: nothing written, nothing sent). Acknowledging
        also hands the turn's slot to its user's next waiting turn
        (``shared/fairness.py``). Returns whether the reply was the
        conversation's first (then the worker makes a title)."""
        if dead is None:
            dead = error is not None and error.retryable
        turn = d.turn
        added: Any = None
        if reply is not None and checkpoint is not None:
            added = await checkpoint.store_reply(self.store, reply, turn.user_id)
        pipe = self.redis.pipeline(transaction=False)
        # The gateway counted this reply as a message when it queued the turn;
        # its text is counted here, once (not again for a reply re-sent).
        nbytes = _stored_text_bytes(reply) if reply is not None and new else 0
        stored = reply is not None
        if reply is not None:
            if checkpoint is None:
                self.store.queue_add_message(pipe, turn.conversation_id, reply, owner=turn.user_id)
            storage_usage.queue_add(pipe, self.keys, turn.user_id, nbytes=nbytes)
        else:
            storage_usage.queue_add(pipe, self.keys, turn.user_id, messages=-1)  # none to store
            reply = reply_message(d, "", "error", None, error)
        ids = {"turn_id": turn.turn_id, "conversation_id": turn.conversation_id}
        if error is not None:
            queue_event(
                pipe, self.keys, turn, ErrorEvent(code=error.code, message=error.message, **ids)
            )
            if dead:
                self._queue_dead(pipe, d, error)
        queue_event(pipe, self.keys, turn, StreamEndEvent(message=reply, **d.ids))
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
        if checkpoint is None:
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
        await self.finish(d, failed_reply(d, error), error, dead=True)
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
        why = {"code": error.code, "error": error.message}
        letter = DeadLetter(turn=d.turn, deliveries=d.deliveries, entry_id=d.entry_id, **why)
        queue_dead_letter(pipe, self.keys, d.pool, letter)


def _stored_text_bytes(reply: Message) -> int:
    """What a reply stores for its user's quota: its text, and the passages
    it cites (up to a few KB each), which live in the same document."""
    return storage_usage.text_bytes(reply.content) + sum(
        storage_usage.text_bytes(c.text) for c in reply.citations
    )
