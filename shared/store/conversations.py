"""Conversation history in Redis, shared by gateway (user messages, the HTTP
API) and workers (replies, titles).

Each conversation is a few keys under its id's hash tag (``shared/keys.py``):
its hash (owner, title, model, system prompt), its tree (children by parent,
current leaf, counters) and one hash per message. Adding a message is one
script (``lua.ADD``) that writes the message, links it under its parent and
moves the current leaf, queued on a pipeline the caller owns so it travels
with the stream entries that belong with it. Reads walk the tree in Redis:
a turn takes the branch up from its question until its context is full, the
API a page at a time; nothing ever reads a whole long conversation to
answer one request, except an export.

This file holds the writes; the reads are in ``reads.py`` (a turn's
context, the list, whole conversations) and ``paging.py`` (pages of a
branch), the types callers handle in ``types.py``.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from shared.conversation import BranchSwitch, Conversation, Message, new_id, now
from shared.keys import Keys
from shared.store import bulk, codec, lua
from shared.store.codec import ts
from shared.store.paging import Paging
from shared.store.types import (
    TITLE_MAX_CHARS,
    AddResult,
    MessageNotFoundError,
    NotFoundError,
    score,
)
from shared.tokens import message_tokens

#: The conversation fields ``update`` may change, by their API names.
_FIELD_NAMES = {"title": "t", "model": "m", "system_prompt": "sp"}


class ConversationStore(Paging):
    """Every read (``reads.py``, ``paging.py``) and the writes."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        super().__init__(redis, keys)
        self._update, self._title, self._add = bulk.register(redis, lua.UPDATE, lua.TITLE, lua.ADD)

    async def switch_branch(self, cid: str, uid: str, message_id: str) -> BranchSwitch:
        """Show the newest branch through ``message_id``: its newest leaf
        becomes current. Returns the branch from the message down, and the
        page ending at the leaf when that is further down."""
        down = await self.page_down(cid, uid, message_id, include_start=True)
        leaf = await self.newest_leaf(cid, message_id)
        if leaf is None:
            raise MessageNotFoundError(message_id)
        await self.update(cid, uid, {"current_id": leaf})
        down.current_id = leaf
        tail = None
        if down.newer is not None:
            tail = await self.page(cid, uid, leaf=leaf)
        return BranchSwitch(current_id=leaf, down=down, tail=tail)

    # --- writes ------------------------------------------------------------

    async def create(
        self,
        owner: str,
        *,
        title: str = "New chat",
        system_prompt: str = "",
        model: str | None = None,
        pipe: Pipeline | None = None,
    ) -> Conversation:
        """A new empty conversation, listed for its owner (queued on ``pipe``
        when given)."""
        ts_ = now()
        conv = Conversation(
            id=new_id(),
            owner=owner,
            title=title[:TITLE_MAX_CHARS] or "New chat",
            system_prompt=system_prompt,
            model=model,
            created_at=ts_,
            updated_at=ts_,
        )
        own = pipe is None
        p = self.redis.pipeline(transaction=False) if pipe is None else pipe
        # The tree first: a conversation exists for readers once its hash does.
        p.hset(self.keys.tree(conv.id), mapping={".cur": "", ".ua": ts(ts_), ".n": 0, ".b": 0})
        p.hset(self.keys.conversation(conv.id), mapping=codec.conversation_fields(conv))
        p.zadd(self.keys.user_conversations(owner), {conv.id: score(ts_)})
        if own:
            await p.execute()
        return conv

    def queue_add_message(
        self,
        pipe: Pipeline,
        cid: str,
        message: Message,
        *,
        owner: str,
        set_current: bool = True,
        bump: bool = False,
        marker: str | None = None,
        marker_ttl: int = 0,
        create: Conversation | None = None,
        expect_current: str | None = None,
    ) -> None:
        """Add (or store again: same id, harmless) a message, in one script.

        ``owner``: the writer, who must own the conversation (the script
        answers -1 otherwise: a worker's reply to a conversation deleted
        meanwhile is dropped, not stored into nothing). ``bump``: the
        conversation also moves to the top of its owner's list. ``marker``:
        a client frame's key; a frame acted on already writes nothing
        (status 0). ``create``: the conversation to create first if it does
        not exist (a new conversation's first message). ``expect_current``:
        write nothing (status -3) unless the conversation's current leaf is
        this one (no silent fork when another tab added a message)."""
        created = ""
        if create is not None:
            fields = codec.conversation_fields(create)
            created = codec.dumps({k: fields[k] for k in ("t", "m", "sp", "ca")})
        bulk.queue_script(
            pipe,
            self._add,
            self._conv_keys(cid),
            [
                self.keys.message_prefix(cid),
                owner,
                message.id,
                message.parent_id or "",
                message.role,
                message.content,
                ts(message.created_at),
                message_tokens(message.content),
                codec.extras(message),
                "1" if set_current else "0",
                marker or "",
                marker_ttl,
                created,
                expect_current or "",
            ],
        )
        if bump:
            pipe.zadd(self.keys.user_conversations(owner), {cid: score(message.created_at)})

    async def add_message(
        self, cid: str, message: Message, *, owner: str, set_current: bool = True
    ) -> AddResult:
        """``queue_add_message`` in a round trip of its own."""
        pipe = self.redis.pipeline(transaction=False)
        self.queue_add_message(pipe, cid, message, owner=owner, set_current=set_current)
        return AddResult.parse((await pipe.execute())[0])

    def _update_args(self, cid: str, owner: str, fields: dict[str, Any]) -> list[Any]:
        args: list[Any] = [self.keys.message_prefix(cid), owner, ts(now())]
        args.append(fields.get("current_id") or "")
        for name, field in _FIELD_NAMES.items():
            if name in fields:
                value = fields[name]
                if name == "title":
                    value = str(value)[:TITLE_MAX_CHARS]
                args += [field, value or ""]
        return args

    def queue_update(self, pipe: Pipeline, cid: str, owner: str, fields: dict[str, Any]) -> None:
        """``update`` on a pipeline (without moving the conversation in its
        owner's list)."""
        bulk.queue_script(
            pipe, self._update, self._conv_keys(cid), self._update_args(cid, owner, fields)
        )

    async def update(self, cid: str, owner: str, fields: dict[str, Any]) -> None:
        """Rename, change the system prompt or model, or move the current leaf
        (``current_id``, which must be a message of the conversation)."""
        args = self._update_args(cid, owner, fields)
        result = int(await self._update(keys=self._conv_keys(cid), args=args))
        if result == -1:
            raise NotFoundError(cid)
        if result == -2:
            raise MessageNotFoundError(str(fields.get("current_id")))
        await self.redis.zadd(self.keys.user_conversations(owner), {cid: score(float(args[2]))})

    async def set_title(self, cid: str, title: str, fallback: str) -> bool:
        """Set a generated title, unless the user chose one meanwhile (the
        title is no longer ``fallback`` or "New chat"). True when set."""
        done = await self._title(
            keys=[self.keys.conversation(cid)], args=[title[:TITLE_MAX_CHARS], fallback]
        )
        return bool(done)

    async def delete(self, cid: str, owner: str) -> None:
        """Delete a conversation and take what it held off its owner's
        storage counters (``shared/store/bulk.py``: at once for readers,
        then in bounded batches)."""
        if not await self.bulk.delete(cid, owner):
            raise NotFoundError(cid)

    async def remove_failed(self, cid: str, message_id: str) -> int | None:
        """Take a failed reply out (``tidechat dead retry``); the bytes of
        its text, or None when there was no failed reply to take."""
        return await self.bulk.remove_failed(cid, message_id)
