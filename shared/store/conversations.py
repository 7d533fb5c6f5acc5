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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from shared.conversation import (
    BranchPage,
    BranchSwitch,
    Conversation,
    ConversationSummary,
    Message,
    new_id,
    now,
)
from shared.keys import (
    CONTEXT_CALL_BYTES,
    CONTEXT_MAX_MESSAGES,
    LEAF_STEPS,
    PAGE_MAX_BYTES,
    PAGE_MESSAGES,
    Keys,
)
from shared.store import bulk, codec, lua
from shared.store.codec import message_from_row, pairs, ts
from shared.tokens import message_tokens

#: A conversation title longer than this is cut (titles are one line).
TITLE_MAX_CHARS = 120

#: The conversation fields ``update`` may change, by their API names.
_FIELD_NAMES = {"title": "t", "model": "m", "system_prompt": "sp"}


class NotFoundError(Exception):
    """The conversation (or message) does not exist or belongs to someone else."""


class MessageNotFoundError(NotFoundError):
    """The conversation exists (and is the caller's), the message does not."""


#: A conflict's error text starts with this word, then the conversation's
#: current leaf now.
CONFLICT = "CONFLICT"


class ConflictError(Exception):
    """The conversation moved on: its newest message is not the one expected."""

    def __init__(self, current_id: str | None) -> None:
        super().__init__(f"{CONFLICT} {current_id or ''}")
        self.current_id = current_id

    @classmethod
    def from_reply(cls, error: Exception) -> ConflictError | None:
        """The conflict an error reports (itself, or a ``CONFLICT <id>`` reply), else None."""
        if isinstance(error, ConflictError):
            return error
        text = str(error).removeprefix("ERR ")
        if not text.startswith(CONFLICT):
            return None
        return cls(text[len(CONFLICT) :].strip() or None)


@dataclass(slots=True)
class ConversationHead:
    """The few fields the gateway needs to accept a turn, read in one round trip."""

    id: str
    owner: str
    current_id: str | None
    model: str | None
    title: str
    #: role and parent of the message the frame names, when it names one
    message_role: str | None = None
    message_parent_id: str | None = None
    message_exists: bool = False


@dataclass(slots=True)
class AddResult:
    """What adding a message did (``lua.ADD``'s reply)."""

    #: 1 stored, 0 a resent frame (nothing written), -1 no such
    #: conversation of the writer's, -2 no such parent.
    status: int
    #: The message was not stored before (a reply stored again is not).
    new: bool
    #: It is the conversation's first reply.
    first_reply: bool
    #: Status -3 (a conflict): the conversation's current leaf now.
    current_id: str | None = None

    @classmethod
    def parse(cls, reply: Any) -> AddResult:
        status, new, first = (int(v) for v in reply[:3])
        current = str(reply[3]) if len(reply) > 3 and reply[3] else None
        return cls(status, bool(new), bool(first), current)


@dataclass(slots=True)
class TurnContext:
    """What a worker reads for a turn (``lua.CONTEXT``)."""

    owner: str
    system_prompt: str
    #: The conversation had a reply before this turn's.
    replied: bool
    #: This turn's reply, when an earlier delivery stored it already.
    stored_reply: Message | None
    #: The branch up to the question, root first: as much as the budget
    #: asked for (``complete``: all of it, up to the root).
    branch: list[Message]
    complete: bool


def title_from_text(text: str, words: int = 8) -> str:
    """The fallback title: the first words of the first question."""
    first = " ".join(text.split()[:words]).strip()
    if not first:
        return "New chat"
    return first[:TITLE_MAX_CHARS]


def score(ts_: float) -> int:
    """A conversation's place in its owner's list: last update, in ms."""
    return int(ts_ * 1000)


class ConversationStore:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._context = redis.register_script(lua.CONTEXT)
        self._context_more = redis.register_script(lua.CONTEXT_MORE)
        self._page = redis.register_script(lua.PAGE)
        self._down = redis.register_script(lua.DOWN)
        self._leaf = redis.register_script(lua.NEWEST_LEAF)
        self._update = redis.register_script(lua.UPDATE)
        self._title = redis.register_script(lua.TITLE)
        self._add = redis.register_script(lua.ADD)
        self.bulk = bulk.Bulk(redis, keys)

    def _conv_keys(self, cid: str) -> list[str]:
        return [self.keys.conversation(cid), self.keys.tree(cid)]

    # --- reads -------------------------------------------------------------

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
        for cid in cids:
            pipe.hmget(self.keys.conversation(cid), ["t", "m", "ca", "del", "rp", "o"])
            pipe.hget(self.keys.tree(cid), ".ua")
        raw = await pipe.execute()
        out: list[ConversationSummary | None] = []
        for i, cid in enumerate(cids):
            title, model, created, deleted, replay, owner = raw[2 * i]
            if owner is None or deleted is not None or replay is not None:
                out.append(None)
                continue
            meta = {"t": title or "", "m": model or "", "ca": created or "0"}
            out.append(codec.summary_from(cid, meta, raw[2 * i + 1]))
        return out

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


def _parse_cursor(cursor: str | None) -> tuple[int | None, str | None]:
    if not cursor:
        return None, None
    score_, _, cid = cursor.partition(":")
    try:
        return int(score_), (cid or None)
    except ValueError as exc:
        raise ValueError("invalid cursor") from exc
