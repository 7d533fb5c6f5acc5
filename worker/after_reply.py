"""What happens to a reply once it is generated: the moderation hook before
it is stored (``moderate``), and the conversation's title after the first
one (``title``)."""

from __future__ import annotations

from shared.audit import AuditEntry, AuditLog, Party
from shared.conversation import Message
from shared.models_file import ModelCatalog, ModelSpec
from shared.moderation import FlagLog, Moderator, flagged
from shared.protocol import TitleEvent
from shared.store import ConversationStore, title_from_text
from shared.streams import TurnRequest, queue_feed_event
from worker.backends import Backend
from worker.finish import queue_event
from worker.title import make_title


class AfterReply:
    def __init__(self, store: ConversationStore, catalog: ModelCatalog, audit_maxlen: int) -> None:
        self.store = store
        self.redis, self.keys = store.redis, store.keys
        self.moderator = Moderator(catalog.moderation)
        self.flags = FlagLog(self.redis, self.keys)
        self.audit = AuditLog(self.redis, self.keys, audit_maxlen)

    async def moderate(self, turn: TurnRequest, reply: Message) -> Message:
        """The moderation hook on a completed reply: a blocked one keeps its
        place in the conversation, with its text withheld and the admin's
        reason (clients replace the streamed text with ``stream_end``'s)."""
        if not reply.content or not self.moderator.applies("output"):
            return reply
        verdict = await self.moderator.check(reply.content, "output")
        if verdict is None:
            return reply
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
        detail = {"direction": "output", "rule": verdict.rule}
        detail |= {"conversation_id": turn.conversation_id, "model": turn.model}
        entry = AuditEntry(kind="moderation.blocked", target=Party(id=turn.user_id), detail=detail)
        self.audit.queue(pipe, entry)
        await pipe.execute()
        return reply.model_copy(update={"content": "", "blocked": verdict.reason, "citations": []})

    async def title(
        self, turn: TurnRequest, spec: ModelSpec, backend: Backend, question: str, answer: str
    ) -> None:
        fallback = title_from_text(question)
        title = fallback
        if spec.auto_title:
            made = await make_title(backend, question, answer)
            title = made or title
        # A title the user chose while the first reply was on its way wins.
        if not await self.store.set_title(turn.conversation_id, title, fallback):
            return
        pipe = self.redis.pipeline(transaction=False)
        event = TitleEvent(conversation_id=turn.conversation_id, title=title)
        queue_event(pipe, self.keys, turn, event)
        # Every tab of the user lists the conversation under its title.
        queue_feed_event(pipe, self.keys, turn.user_id, event)
        await pipe.execute(raise_on_error=False)
