"""Queueing a turn once its message is stored: the user's turn slot
(``gateway/limits.py``), the pool's queue and the user's storage
(``gateway/admission.py``), and the turn itself, onto the pool's stream or
into the user's own line (``shared/fairness.py``) after its ``turn_started``."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from gateway.admission import Admission, Quotas
from gateway.config import GatewaySettings
from gateway.errors import ApiError
from gateway.limits import TurnQuota
from gateway.user_messages import MessageWriter, TurnTarget
from shared.audit import AuditLog
from shared.conversation import now
from shared.fairness import FairLines
from shared.models_file import ModelSpec
from shared.protocol import TurnStartedEvent, UserInfo
from shared.streams import TurnKind, TurnRequest, queue_feed_event


class TurnQueue:
    def __init__(
        self,
        redis: Redis,
        writer: MessageWriter,
        cfg: GatewaySettings,
        audit: AuditLog,
    ) -> None:
        keys = writer.keys
        self.writer = writer
        self.quota = TurnQuota(redis, keys, cfg.turn_limits, audit=audit)
        self.admission = Admission(
            redis,
            keys,
            max_queued_turns=cfg.max_queued_turns,
            max_waiting_per_user=cfg.max_waiting_turns_per_user,
            quotas=Quotas(cfg.quota_conversations, cfg.quota_messages, cfg.quota_bytes),
            audit=audit,
        )
        self.fair = FairLines(redis, keys)
        self.fair_turns_per_user = cfg.fair_turns_per_user
        self.submitted = 0

    async def take_slot(self, user: UserInfo, turn_id: str, guard: str | None) -> bool:
        """Take one of the user's turn slots; False if the frame is a resend
        of one already acted on (refused by a limit it must not be: it is
        not a new turn)."""
        try:
            await self.quota.take(user.id, turn_id)
        except ApiError:
            if await self.writer.frames.seen(guard):
                return False
            raise
        return True

    def queue(
        self,
        pipe: Pipeline,
        target: TurnTarget,
        turn_id: str,
        kind: TurnKind,
        parent_id: str,
        spec: ModelSpec,
    ) -> None:
        """Queue a turn answering ``parent_id``, LAST in the pipeline
        (``TurnQuota.settle``).

        First ``turn_started`` tells the user's other tabs
        (``gateway/live.py``): their sidebars move the conversation up, and
        those showing it follow the turn on this session's stream."""
        turn = TurnRequest(
            turn_id=turn_id,
            kind=kind,
            session_id=target.session_id,
            user_id=target.user.id,
            conversation_id=target.cid,
            parent_id=parent_id,
            model=spec.id,
            client_id=target.client_id,
        )
        event = TurnStartedEvent(
            turn_id=turn_id,
            conversation_id=target.cid,
            title=target.title,
            model=spec.id,
            updated_at=now(),
        )
        queue_feed_event(pipe, self.writer.keys, turn.user_id, event, session_id=turn.session_id)
        self.writer.queue_ttl_if_due(pipe, turn.session_id)
        # Onto the pool's stream, or into the user's own line (shared/fairness.py).
        self.fair.queue_admit(pipe, spec.pool, turn, self.fair_turns_per_user)
        self.submitted += 1
        self.admission.queued(spec.pool)
