"""The moderation stream: what the hook blocked, for the admin's review
(with a short excerpt), and its entry in the audit log (without the text)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, cast

from pydantic import BaseModel

from shared.audit import AuditEntry, AuditLog, Party
from shared.keys import MODERATION_EXCERPT_CHARS, MODERATION_MAXLEN, Keys
from shared.moderation_config import Direction
from shared.streams import CappedLog, older_than


@dataclass(frozen=True, slots=True)
class Verdict:
    """A block: what the user reads, and what matched (for the admin)."""

    reason: str
    rule: str


class FlaggedItem(BaseModel):
    """A blocked message or reply, as the console lists it."""

    id: str = ""
    ts: float
    direction: Direction
    user_id: str
    username: str = ""
    conversation_id: str
    message_id: str
    model: str | None = None
    reason: str
    rule: str
    excerpt: str


@dataclass(eq=False)
class FlagLog(CappedLog):
    """The moderation stream: the only writer of ``keys.moderation()``."""

    maxlen: int = MODERATION_MAXLEN
    name = Keys.moderation

    def queue(self, pipe: Any, item: FlaggedItem) -> None:
        item = item.model_copy(update={"excerpt": item.excerpt[:MODERATION_EXCERPT_CHARS]})
        self.queue_json(pipe, item.model_dump_json(exclude={"id"}))

    def queue_blocked(self, pipe: Any, item: FlaggedItem, audit: AuditLog) -> None:
        """List a blocked text for review, and audit the block (without the
        text): a user's message was blocked as they sent it (they acted), a
        reply as it was written to them (they were acted on)."""
        self.queue(pipe, item)
        user = Party(id=item.user_id, name=item.username)
        detail: dict[str, Any] = {
            "direction": item.direction,
            "rule": item.rule,
            "conversation_id": item.conversation_id,
        }
        if item.model is not None:
            detail["model"] = item.model
        audit.queue(
            pipe,
            AuditEntry(
                kind="moderation.blocked",
                actor=user if item.direction == "input" else None,
                target=user if item.direction == "output" else None,
                detail=detail,
            ),
        )

    async def list(
        self, *, before: str | None = None, limit: int = 50
    ) -> tuple[list[FlaggedItem], str | None]:
        """Newest first; ``before``: an entry id (exclusive) to page on."""
        top = older_than(before) if before else "+"
        if top is None:
            return [], None
        rows = cast(
            list[tuple[str, dict[str, str]]],
            await self.redis.xrevrange(self.keys.moderation(), top, "-", count=limit),
        )
        items = [
            FlaggedItem.model_validate_json(f["d"]).model_copy(update={"id": i}) for i, f in rows
        ]
        return items, (rows[-1][0] if len(rows) == limit else None)


def flagged(
    verdict: Verdict,
    *,
    direction: Direction,
    user_id: str,
    username: str = "",
    conversation_id: str,
    message_id: str,
    text: str,
    model: str | None = None,
) -> FlaggedItem:
    return FlaggedItem(
        ts=time.time(),
        direction=direction,
        user_id=user_id,
        username=username,
        conversation_id=conversation_id,
        message_id=message_id,
        model=model,
        reason=verdict.reason,
        rule=verdict.rule,
        excerpt=text[:MODERATION_EXCERPT_CHARS],
    )
