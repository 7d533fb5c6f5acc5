"""Conversation history on RedisJSON, shared by gateway (user messages, the
HTTP API) and workers (replies, titles).

Every write that adds a message is one ``JSON.MSET`` (the message, the
conversation's ``current_id`` and ``updated_at``) queued on a pipeline the
caller owns, so it can travel with the stream entries that belong with it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import WatchError

from shared import rjson, storage_usage
from shared.conversation import Conversation, ConversationSummary, Message, new_id, now
from shared.keys import Keys

#: A conversation title longer than this is cut (titles are one line).
TITLE_MAX_CHARS = 120


class NotFoundError(Exception):
    """The conversation (or message) does not exist or belongs to someone else."""


#: The error reply of ``EXPECT_CURRENT`` starts with this word, then the
#: conversation's ``current_id`` now (nothing: it has none, or is gone).
CONFLICT = "CONFLICT"

#: KEYS: the conversation. ARGV: the ``current_id`` the caller expects. An
#: error reply when it is another (or the conversation is gone): run as the
#: first command of a writer's script (``gateway/once.py``), it stops the
#: writes that follow, so nothing is appended after a message the caller
#: never saw. One key: cluster-safe on its own.
EXPECT_CURRENT = """
-- Always 'CONFLICT <current>' with the space: an error without one gets 'ERR ' put before it.
local raw = redis.call('JSON.GET', KEYS[1], '$.current_id')
if not raw then return redis.error_reply('CONFLICT ') end
local current = cjson.decode(raw)[1]
if current == nil or current == cjson.null then current = '' end
if current ~= ARGV[1] then return redis.error_reply('CONFLICT ' .. current) end
return 1
"""

#: Scripts of the store that a writer's script may run inline (by name).
INLINE_SCRIPTS = {"expect_current": EXPECT_CURRENT}


class ConflictError(Exception):
    """The conversation moved on: its newest message is not the one expected."""

    def __init__(self, current_id: str | None) -> None:
        super().__init__(f"the conversation's newest message is now {current_id}")
        self.current_id = current_id

    @classmethod
    def from_reply(cls, error: Exception) -> ConflictError | None:
        """The conflict an ``EXPECT_CURRENT`` error reply reports, else None."""
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


def title_from_text(text: str, words: int = 8) -> str:
    """The fallback title: the first words of the first question."""
    first = " ".join(text.split()[:words]).strip()
    if not first:
        return "New chat"
    return first[:TITLE_MAX_CHARS]


def _score(ts: float) -> int:
    return int(ts * 1000)


class ConversationStore:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    # --- reads -------------------------------------------------------------

    async def get(self, cid: str) -> Conversation | None:
        raw = await rjson.json_get(self.redis, self.keys.conversation(cid), "$")
        if raw is None:
            return None
        decoded = rjson.decode_paths(raw, ["$"])
        return None if decoded is None else Conversation.model_validate(decoded["$"])

    async def get_owned(self, cid: str, uid: str) -> Conversation:
        conv = await self.get(cid)
        if conv is None or conv.owner != uid:
            raise NotFoundError(cid)
        return conv

    async def head(self, cid: str, message_id: str | None = None) -> ConversationHead | None:
        paths = ["$.owner", "$.current_id", "$.model", "$.title"]
        if message_id is not None:
            mpath = rjson.message_path(message_id)
            paths += [f"{mpath}.role", f"{mpath}.parent_id", f"{mpath}.id"]
        got = await rjson.get_paths(self.redis, self.keys.conversation(cid), *paths)
        if got is None:
            return None
        head = ConversationHead(
            id=cid,
            owner=got["$.owner"],
            current_id=got["$.current_id"],
            model=got["$.model"],
            title=got["$.title"],
        )
        if message_id is not None:
            head.message_role = got[paths[4]]
            head.message_parent_id = got[paths[5]]
            head.message_exists = got[paths[6]] is not None
        return head

    async def owned_head(
        self, cid: str, uid: str, message_id: str | None = None
    ) -> ConversationHead:
        head = await self.head(cid, message_id)
        if head is None or head.owner != uid:
            raise NotFoundError(cid)
        return head

    async def list_for_user(
        self, uid: str, *, q: str | None = None, limit: int = 50, cursor: str | None = None
    ) -> tuple[list[ConversationSummary], str | None]:
        """Newest first; ``q`` matches titles and message text, case-insensitively.

        The cursor is the (score, id) of the last item returned, so paging is
        stable while conversations are updated.
        """
        key = self.keys.user_conversations(uid)
        after_score, after_id = _parse_cursor(cursor)
        needle = q.casefold().strip() if q else ""
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
                (str(member), int(score))
                for member, score in rows
                if after_score is None
                or int(score) < after_score
                or (after_id is not None and str(member) < after_id)
            ]
            summaries = await self._summaries([cid for cid, _ in candidates], needle)
            for (cid, score), summary in zip(candidates, summaries, strict=True):
                last = (score, cid)
                if summary is not None:
                    found.append(summary)
                    if len(found) == limit:
                        break
            if len(rows) < batch and len(found) < limit:
                return found, None
        return found, (f"{last[0]}:{last[1]}" if last else None)

    async def _summaries(self, cids: list[str], needle: str) -> list[ConversationSummary | None]:
        if not cids:
            return []
        paths = ["$.id", "$.title", "$.model", "$.created_at", "$.updated_at"]
        pipe = self.redis.pipeline(transaction=False)
        for cid in cids:
            pipe.execute_command("JSON.GET", self.keys.conversation(cid), *paths)
            if needle:
                pipe.execute_command(
                    "JSON.GET", self.keys.conversation(cid), "$.messages.*.content"
                )
        raw = await pipe.execute()
        out: list[ConversationSummary | None] = []
        step = 2 if needle else 1
        for i in range(len(cids)):
            got = rjson.decode_paths(raw[i * step], paths)
            if got is None:
                out.append(None)
                continue
            summary = ConversationSummary(
                id=got["$.id"],
                title=got["$.title"],
                model=got["$.model"],
                created_at=got["$.created_at"],
                updated_at=got["$.updated_at"],
            )
            if needle and not _matches(needle, summary.title, raw[i * step + 1]):
                out.append(None)
                continue
            out.append(summary)
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
        ts = now()
        conv = Conversation(
            id=new_id(),
            owner=owner,
            title=title[:TITLE_MAX_CHARS] or "New chat",
            system_prompt=system_prompt,
            model=model,
            created_at=ts,
            updated_at=ts,
        )
        own = pipe is None
        p = self.redis.pipeline(transaction=False) if pipe is None else pipe
        self.queue_save(p, conv)
        if own:
            await p.execute()
        return conv

    def queue_save(self, pipe: Pipeline, conv: Conversation) -> None:
        """Write a whole conversation and list it for its owner."""
        rjson.queue_set(pipe, self.keys.conversation(conv.id), "$", conv.stored())
        pipe.zadd(self.keys.user_conversations(conv.owner), {conv.id: _score(conv.updated_at)})

    def queue_save_json(
        self, pipe: Pipeline, cid: str, owner: str, updated_at: float, stored_json: str
    ) -> None:
        """``queue_save`` for a document already serialized (an import, in a thread)."""
        pipe.execute_command("JSON.SET", self.keys.conversation(cid), "$", stored_json)
        pipe.zadd(self.keys.user_conversations(owner), {cid: _score(updated_at)})

    def queue_add_message(
        self,
        pipe: Pipeline,
        cid: str,
        message: Message,
        *,
        owner: str | None = None,
        set_current: bool = True,
    ) -> None:
        """Add (or overwrite: same id, same message) a message in one JSON.MSET.

        With ``owner`` the conversation also moves to the top of its owner's list.
        """
        key = self.keys.conversation(cid)
        triples: list[tuple[str, str, Any]] = [
            (key, rjson.message_path(message.id), message.stored())
        ]
        if set_current:
            triples.append((key, "$.current_id", message.id))
        triples.append((key, "$.updated_at", message.created_at))
        rjson.queue_mset(pipe, triples)
        if owner is not None:
            pipe.zadd(self.keys.user_conversations(owner), {cid: _score(message.created_at)})

    def queue_expect_current(self, pipe: Pipeline, cid: str, expected: str) -> None:
        """Check, as the first command of a pipeline that a script runs
        atomically (``gateway/once.py``), that the conversation's newest
        message (``current_id``) is still ``expected``: else the script stops
        before any write, and the reply is a ``ConflictError`` (``from_reply``).
        EVAL with the text, not EVALSHA: the writer's script runs it inline."""
        pipe.eval(EXPECT_CURRENT, 1, self.keys.conversation(cid), expected)

    def queue_fields(self, pipe: Pipeline, cid: str, fields: dict[str, Any]) -> None:
        """Set top-level fields (title, system prompt, model, current_id)."""
        key = self.keys.conversation(cid)
        rjson.queue_mset(pipe, [(key, f"$.{name}", value) for name, value in fields.items()])

    async def update(self, cid: str, owner: str, fields: dict[str, Any]) -> None:
        ts = now()
        pipe = self.redis.pipeline(transaction=False)
        self.queue_fields(pipe, cid, {**fields, "updated_at": ts})
        pipe.zadd(self.keys.user_conversations(owner), {cid: _score(ts)})
        await pipe.execute()

    def queue_title(self, pipe: Pipeline, cid: str, title: str) -> None:
        rjson.queue_set(pipe, self.keys.conversation(cid), "$.title", title[:TITLE_MAX_CHARS], "XX")

    async def delete(self, cid: str, owner: str) -> None:
        """Delete a conversation and take what it held off its owner's
        storage counters, in one transaction; the size is read under WATCH,
        so a reply landing meanwhile is either counted in it or refused."""
        key = self.keys.conversation(cid)
        async with self.redis.pipeline(transaction=True) as pipe:
            for _attempt in range(10):
                try:
                    await pipe.watch(key)
                    exists = bool(await pipe.exists(key))
                    size = (
                        await storage_usage.conversation_size(pipe, self.keys, cid)
                        if exists
                        else None
                    )
                    counted = bool(
                        await pipe.hexists(self.keys.user_storage(owner), storage_usage.COUNTED)
                    )
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.delete(key)
                    pipe.zrem(self.keys.user_conversations(owner), cid)
                    if size is not None and counted:
                        messages, nbytes = size
                        storage_usage.queue_add(
                            pipe,
                            self.keys,
                            owner,
                            conversations=-1,
                            messages=-messages,
                            nbytes=-nbytes,
                        )
                    await pipe.execute()
                    return
                except WatchError:
                    continue
        raise RuntimeError(f"conversation {cid} kept changing while it was deleted")


def _parse_cursor(cursor: str | None) -> tuple[int | None, str | None]:
    if not cursor:
        return None, None
    score, _, cid = cursor.partition(":")
    try:
        return int(score), (cid or None)
    except ValueError as exc:
        raise ValueError("invalid cursor") from exc


def _matches(needle: str, title: str, contents_raw: str | None) -> bool:
    if needle in title.casefold():
        return True
    if not contents_raw:
        return False
    contents = json.loads(contents_raw)
    return any(isinstance(c, str) and needle in c.casefold() for c in contents)
