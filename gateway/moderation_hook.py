"""The moderation hook on what users type (``shared/moderation.py`` decides):
a message it blocks is stored like any other (marked, never answered), the
session is told (the message, then ``error`` ``blocked`` with the admin's
reason), and it is listed for review and in the audit log. No turn is queued.
Replies are checked by the worker after they are written."""

from __future__ import annotations

from gateway.errors import raise_write_error
from gateway.user_messages import MessageWriter, Posting, execute
from shared.audit import AuditLog
from shared.moderation import Moderator
from shared.moderation_log import FlagLog, Verdict, flagged
from shared.protocol import ErrorEvent, UserMessageEvent


class InputModeration:
    def __init__(self, writer: MessageWriter, audit: AuditLog, moderator: Moderator | None) -> None:
        self.writer = writer
        self.audit = audit
        self.moderator = moderator
        self.flags = FlagLog(writer.redis, writer.keys)

    async def verdict(self, content: str) -> Verdict | None:
        """The hook's verdict on a user's text; None: it goes through."""
        if self.moderator is None or not self.moderator.applies("input"):
            return None
        return await self.moderator.check(content, "input")

    async def block(self, posting: Posting, verdict: Verdict) -> None:
        """Store a message the hook blocked and tell the session; stored like
        any message (the frame's marker, the stale-parent check)."""
        writer = self.writer
        added = await writer.store_message(posting, writer.guard(posting))
        if added.status == 0:
            return  # a resent duplicate: acted on already
        user, session_id, cid, message = (
            posting.user,
            posting.session_id,
            posting.cid,
            posting.message,
        )
        pipe = writer.redis.pipeline(transaction=False)
        writer.queue_stored(pipe, posting, messages=1)
        writer.queue_ttl_if_due(pipe, session_id)
        writer.queue_event(
            pipe,
            session_id,
            UserMessageEvent(conversation_id=cid, message=message, client_id=posting.client_id),
        )
        writer.queue_event(
            pipe,
            session_id,
            ErrorEvent(
                code="blocked",
                message=verdict.reason,
                conversation_id=cid,
                client_id=posting.client_id,
            ),
        )
        item = flagged(
            verdict,
            direction="input",
            user_id=user.id,
            username=user.username,
            conversation_id=cid,
            message_id=message.id,
            text=message.content,
        )
        self.flags.queue_blocked(pipe, item, self.audit)
        raise_write_error(await execute(pipe))
