"""Reading conversations: the few fields a turn is accepted on, the
context a turn is built from (a bounded walk up the branch, in Redis), the
owner's list, and whole conversations for exports. Pages of a branch are in
``paging.py``; writes in ``conversations.py``."""

from __future__ import annotations

from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from shared.conversation import Conversation, ConversationSummary, Message
from shared.keys import CONTEXT_CALL_BYTES, CONTEXT_MAX_MESSAGES, Keys
from shared.store import bulk, codec, lua
from shared.store.codec import message_from_row, pairs
from shared.store.types import ConversationHead, NotFoundError, TurnContext


class StoreReads:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self.bulk = bulk.Bulk(redis, keys)
        self._context, self._context_more = bulk.register(redis, lua.CONTEXT, lua.CONTEXT_MORE)

    def _conv_keys(self, cid: str) -> list[str]:
        return [self.keys.conversation(cid), self.keys.tree(cid)]

    async def get(self, cid: str) -> Conversation | None:
        """The whole conversation, every branch (exports, tests): the one
        read whose cost grows with the conversation."""
        return await self.bulk.read(cid)

    async def get_owned(self, cid: str, uid: str) -> Conversation:
        conv = await self.get(cid)
        if conv is None or conv.owner != uid:
            raise NotFoundError(cid)
        return conv

    async def head(self, cid: str, message_id: str | None = None) -> ConversationHead | None:
        pipe = self.redis.pipeline(transaction=False)
        pipe.hmget(self.keys.conversation(cid), ["o", "m", "t", "del"])
        pipe.hget(self.keys.tree(cid), ".cur")
        if message_id is not None:
            pipe.hmget(self.keys.message(cid, message_id), ["r", "p"])
        got = await pipe.execute()
        owner, model, title, deleted = got[0]
        if owner is None or deleted is not None:
            return None
        head = ConversationHead(
            id=cid, owner=owner, current_id=got[1] or None, model=model or None, title=title or ""
        )
        if message_id is not None:
            role, parent = got[2]
            head.message_role = role
            head.message_parent_id = parent or None
            head.message_exists = role is not None
        return head

    async def message(self, cid: str, mid: str) -> Message | None:
        """One message (without its children), or None."""
        fields = cast(dict[str, str], await self.redis.hgetall(self.keys.message(cid, mid)))
        return codec.message_from_hash(mid, fields) if fields else None

    async def owned_head(
        self, cid: str, uid: str, message_id: str | None = None
    ) -> ConversationHead:
        head = await self.head(cid, message_id)
        if head is None or head.owner != uid:
            raise NotFoundError(cid)
        return head

    def queue_context(
        self,
        pipe: Pipeline,
        cid: str,
        leaf: str,
        turn_id: str,
        *,
        budget: int,
        most: int = CONTEXT_MAX_MESSAGES,
    ) -> None:
        """Queue the read of what a turn needs (``lua.CONTEXT``): the branch
        up from ``leaf`` until the cached token estimates reach ``budget``
        (or the root, or ``CONTEXT_CALL_BYTES`` of text: ``finish_context``
        reads the rest), the system prompt, and the turn's reply if an
        earlier delivery stored it."""
        bulk.queue_script(
            pipe,
            self._context,
            self._conv_keys(cid),
            [self.keys.message_prefix(cid), leaf, turn_id, budget, most, CONTEXT_CALL_BYTES],
        )

    async def finish_context(
        self, cid: str, turn_id: str, reply: Any, *, budget: int, most: int = CONTEXT_MAX_MESSAGES
    ) -> TurnContext | None:
        """The turn's context from ``queue_context``'s reply, with the rest of
        its walk read in further bounded calls when the first stopped at its
        byte cap."""
        if reply is None:
            return None
        owner, system, replied, stored, walk, total = reply
        rows = list(walk)
        tokens = int(total)
        while rows and tokens < budget and len(rows) < most and rows[-1][1]:
            more = await self._context_more(
                keys=self._conv_keys(cid),
                args=[
                    self.keys.message_prefix(cid),
                    rows[-1][1],
                    budget - tokens,
                    most - len(rows),
                    CONTEXT_CALL_BYTES,
                ],
            )
            if more is None or not more[0]:
                break
            rows += list(more[0])
            tokens += int(more[1])
        branch = [message_from_row(*row[:6]) for row in reversed(rows)]
        return TurnContext(
            owner=str(owner),
            system_prompt=str(system),
            replied=bool(replied),
            stored_reply=codec.message_from_hash(turn_id, pairs(stored)) if stored else None,
            branch=branch,
            complete=bool(branch) and branch[0].parent_id is None,
        )

    async def context(
        self, cid: str, leaf: str, turn_id: str, budget: int, most: int = CONTEXT_MAX_MESSAGES
    ) -> TurnContext | None:
        """``queue_context`` and ``finish_context`` in round trips of their own."""
        pipe = self.redis.pipeline(transaction=False)
        self.queue_context(pipe, cid, leaf, turn_id, budget=budget, most=most)
        reply = (await pipe.execute())[0]
        return await self.finish_context(cid, turn_id, reply, budget=budget, most=most)

    async def list_for_user(
        self, uid: str, *, limit: int = 50, cursor: str | None = None
    ) -> tuple[list[ConversationSummary], str | None]:
        """Newest first. The cursor is the (score, id) of the last item
        returned, so paging is stable while conversations are updated."""
        key = self.keys.user_conversations(uid)
        after_score, after_id = _parse_cursor(cursor)
        found: list[ConversationSummary] = []
        offset = 0
        batch = max(limit * 2, 50)
        max_score: str = "+inf" if after_score is None else str(after_score)
        last: tuple[int, str] | None = None
        while len(found) < limit:
            # WITHSCORES on a decode_responses client: (member, score) pairs.
            rows = cast(
                list[tuple[str, float]],
                await self.redis.zrevrangebyscore(
                    key, max_score, "-inf", start=offset, num=batch, withscores=True
                ),
            )
            if not rows:
                return found, None
            offset += len(rows)
            candidates = [
                (str(member), int(s))
                for member, s in rows
                if after_score is None
                or int(s) < after_score
                or (after_id is not None and str(member) < after_id)
            ]
            summaries = await self.summaries([cid for cid, _ in candidates])
            for (cid, s), summary in zip(candidates, summaries, strict=True):
                last = (s, cid)
                if summary is not None:
                    found.append(summary)
                    if len(found) == limit:
                        break
            if len(rows) < batch and len(found) < limit:
                return found, None
        return found, (f"{last[0]}:{last[1]}" if last else None)

    async def summaries(self, cids: list[str]) -> list[ConversationSummary | None]:
        """What the list shows of each conversation, in one round trip (None:
        gone, being deleted, or a replay's copy)."""
        if not cids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        self.queue_summaries(pipe, cids)
        return self.read_summaries(cids, await pipe.execute())

    def queue_summaries(self, pipe: Pipeline, cids: list[str]) -> None:
        """``summaries`` on a pipeline (two replies a conversation)."""
        for cid in cids:
            pipe.hmget(self.keys.conversation(cid), ["t", "m", "ca", "del", "rp", "o"])
            pipe.hget(self.keys.tree(cid), ".ua")

    def read_summaries(self, cids: list[str], raw: list[Any]) -> list[ConversationSummary | None]:
        """``queue_summaries``'s replies (the first ``2 * len(cids)``)."""
        out: list[ConversationSummary | None] = []
        for i, cid in enumerate(cids):
            title, model, created, deleted, replay, owner = raw[2 * i]
            if owner is None or deleted is not None or replay is not None:
                out.append(None)
                continue
            meta = {"t": title or "", "m": model or "", "ca": created or "0"}
            out.append(codec.summary_from(cid, meta, raw[2 * i + 1]))
        return out


def _parse_cursor(cursor: str | None) -> tuple[int | None, str | None]:
    if not cursor:
        return None, None
    score_, _, cid = cursor.partition(":")
    try:
        return int(score_), (cid or None)
    except ValueError as exc:
        raise ValueError("invalid cursor") from exc
