"""Pages of a branch for the API and the web client: from a leaf up (the
tail first, older pages as the user scrolls), from a message down (a branch
switch), the newest leaf under a message, and a whole branch a page at a
time (a Markdown export, a replay). Each page is one script call bounded in
messages and bytes."""

from __future__ import annotations

from typing import Any, cast

from redis.asyncio import Redis

from shared.conversation import BranchPage, Message
from shared.keys import LEAF_STEPS, PAGE_MAX_BYTES, PAGE_MESSAGES, Keys
from shared.store import codec, lua
from shared.store.bulk import register
from shared.store.codec import message_from_row, pairs
from shared.store.reads import StoreReads
from shared.store.types import MessageNotFoundError, NotFoundError


class Paging(StoreReads):
    def __init__(self, redis: Redis, keys: Keys) -> None:
        super().__init__(redis, keys)
        self._page, self._down, self._leaf = register(redis, lua.PAGE, lua.DOWN, lua.NEWEST_LEAF)

    async def page(
        self,
        cid: str,
        uid: str,
        *,
        leaf: str | None = None,
        limit: int = PAGE_MESSAGES,
        max_bytes: int = PAGE_MAX_BYTES,
    ) -> BranchPage:
        """The branch ending at ``leaf`` (default: the current one), its
        newest ``limit`` messages (at most ``max_bytes`` of text)."""
        reply = await self._page(
            keys=self._conv_keys(cid),
            args=[self.keys.message_prefix(cid), leaf or "", limit, max_bytes],
        )
        if reply is None:
            raise NotFoundError(cid)
        meta_flat, state, rows, siblings = reply
        meta = pairs(meta_flat)
        if meta.get("o") != uid:
            raise NotFoundError(cid)
        if leaf is not None and not rows:
            raise MessageNotFoundError(leaf)
        messages = [message_from_row(*row) for row in reversed(rows)]
        page = self._page_of(cid, meta, state, messages, siblings)
        page.older = messages[0].parent_id if messages else None
        return page

    async def page_down(
        self,
        cid: str,
        uid: str,
        start: str,
        *,
        include_start: bool = False,
        limit: int = PAGE_MESSAGES,
        max_bytes: int = PAGE_MAX_BYTES,
    ) -> BranchPage:
        """The branch from ``start`` down along the newest children: what a
        switch to ``start`` shows, and the pages below it."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(self.keys.conversation(cid))
        pipe.hmget(self.keys.tree(cid), [".cur", ".ua", ".n"])
        got = await pipe.execute()
        meta = cast(dict[str, str], got[0])
        if meta.get("o") != uid or "del" in meta:
            raise NotFoundError(cid)
        reply = await self._down(
            keys=self._conv_keys(cid),
            args=[
                self.keys.message_prefix(cid),
                start,
                "1" if include_start else "0",
                limit,
                max_bytes,
            ],
        )
        if reply is None:
            raise MessageNotFoundError(start)
        rows, siblings, leaf = reply
        messages = [message_from_row(*row) for row in rows]
        page = self._page_of(cid, meta, got[1], messages, siblings if include_start else "")
        if not include_start and messages:
            page.head_siblings = await self._siblings(cid, messages[0].parent_id)
        if not leaf and messages:
            page.newer = messages[-1].id
        return page

    async def _siblings(self, cid: str, parent: str | None) -> list[str]:
        csv = cast(str | None, await self.redis.hget(self.keys.tree(cid), parent or "^"))
        return [c for c in (csv or "").split(",") if c]

    def _page_of(
        self,
        cid: str,
        meta: dict[str, str],
        state: list[Any],
        messages: list[Message],
        siblings: str,
    ) -> BranchPage:
        current, updated, count = state
        summary = codec.summary_from(cid, meta, updated)
        return BranchPage(
            **summary.model_dump(),
            system_prompt=meta.get("sp", ""),
            current_id=current or None,
            message_count=int(count or 0),
            messages={m.id: m for m in messages},
            branch=[m.id for m in messages],
            head_siblings=[c for c in (siblings or "").split(",") if c],
        )

    async def newest_leaf(self, cid: str, start: str) -> str | None:
        """The newest leaf under ``start`` (a few bounded calls on a long branch)."""
        node = start
        while True:
            reply = await self._leaf(
                keys=self._conv_keys(cid), args=[self.keys.message_prefix(cid), node, LEAF_STEPS]
            )
            if reply is None:
                return None
            node, done = str(reply[0]), int(reply[1])
            if done:
                return node

    async def branch(self, cid: str, uid: str, leaf: str | None = None) -> list[Message]:
        """The whole branch ending at ``leaf`` (default: the current one),
        root first, read a page at a time (a Markdown export, a replay)."""
        out: list[Message] = []
        page = await self.page(cid, uid, leaf=leaf, limit=1_000, max_bytes=4 * PAGE_MAX_BYTES)
        while True:
            out[:0] = [page.messages[i] for i in page.branch]
            if page.older is None:
                return out
            page = await self.page(
                cid, uid, leaf=page.older, limit=1_000, max_bytes=4 * PAGE_MAX_BYTES
            )
