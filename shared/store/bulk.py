"""Whole conversations at once: reading every branch (exports), writing
one (imports and the migration) and deleting one, each in bounded batches,
so that a conversation of 50,000 messages never holds Redis for long.

Deleting and writing take several commands, so a crash can leave one half
done: each is listed on ``cleanup`` (scored by when it began) while it runs,
and ``sweep`` finishes what is still listed long after.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.commands.core import AsyncScript

from shared import storage_usage
from shared.conversation import Conversation, Message
from shared.keys import BULK_MESSAGES, BULK_PIPELINE, CLEANUP_AFTER_MS, PURGE_FIELDS, Keys
from shared.store import codec, lua


@dataclass(frozen=True, slots=True)
class WritePlan:
    """A conversation encoded for ``Bulk.write``: the CPU-bound part of a
    write, which a caller may run in a worker thread (``plan``)."""

    #: Batches of messages, each the JSON argument of ``lua.BULK_MESSAGES``.
    messages: list[bytes]
    #: Batches of the tree's fields, each the JSON argument of ``lua.BULK_TREE``.
    tree: list[bytes]


def plan(conv: Conversation) -> WritePlan:
    """Encode every message and the tree of ``conv``, in batches."""
    messages = list(conv.messages.values())
    batches = [
        codec.dumps_fast(
            [codec.message_row(m, conv.owner) for m in messages[i : i + BULK_MESSAGES]]
        )
        for i in range(0, len(messages), BULK_MESSAGES)
    ]
    tree: dict[str, Any] = dict(codec.children_of(messages))
    tree.update(
        {
            ".cur": conv.current_id or "",
            ".ua": codec.ts(conv.updated_at),
            ".n": str(len(messages)),
            ".b": str(sum(storage_usage.text_bytes(m.content) for m in messages)),
        }
    )
    if any(m.role == "assistant" for m in messages):
        tree[".r1"] = "1"
    fields = list(tree.items())
    step = 5 * BULK_MESSAGES
    return WritePlan(
        messages=batches,
        tree=[codec.dumps_fast(dict(fields[i : i + step])) for i in range(0, len(fields), step)],
    )


def register(redis: Redis, *scripts: str) -> list[AsyncScript]:
    """Scripts registered on ``redis`` (each is sent by its SHA, loaded on a miss)."""
    return [redis.register_script(text) for text in scripts]


def queue_script(pipe: Pipeline, script: AsyncScript, keys: list[str], args: list[Any]) -> None:
    """A registered script on a pipeline, by its SHA (the pipeline loads it
    first if the server lacks it). redis-py's ``script(client=pipe)`` is a
    coroutine on the asyncio client, unusable while queuing."""
    pipe.scripts.add(script)  # type: ignore[arg-type]  # typed as the sync Script
    pipe.evalsha(script.sha, len(keys), *keys, *args)


class Bulk:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._mark, self._purge, self._remove, self._messages, self._tree = register(
            redis, lua.MARK_DELETED, lua.PURGE, lua.REMOVE_FAILED, lua.BULK_MESSAGES, lua.BULK_TREE
        )
        (self._forget,) = register(redis, storage_usage.FORGET_CONVERSATION)

    # --- reading ---------------------------------------------------------------

    async def message_ids(self, cid: str) -> list[str]:
        """Every message id of a conversation, from its tree (HSCAN: no one
        command returns a long conversation's whole tree)."""
        ids: list[str] = []
        async for field, csv in self.redis.hscan_iter(self.keys.tree(cid), count=1_000):
            if not str(field).startswith("."):
                ids += [c for c in str(csv).split(",") if c]
        return ids

    async def read(self, cid: str) -> Conversation | None:
        """A whole conversation, every branch, with children derived."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(self.keys.conversation(cid))
        pipe.hmget(self.keys.tree(cid), [".cur", ".ua"])
        meta, (current, updated) = await pipe.execute()
        if not meta or "del" in meta:
            return None
        messages: dict[str, Message] = {}
        ids = await self.message_ids(cid)
        for start in range(0, len(ids), BULK_MESSAGES):
            batch = ids[start : start + BULK_MESSAGES]
            pipe = self.redis.pipeline(transaction=False)
            for mid in batch:
                pipe.hgetall(self.keys.message(cid, mid))
            for mid, fields in zip(batch, await pipe.execute(), strict=True):
                if fields:
                    messages[mid] = codec.message_from_hash(mid, fields)
        summary = codec.summary_from(cid, meta, updated)
        return Conversation(
            **summary.model_dump(),
            owner=meta["o"],
            system_prompt=meta.get("sp", ""),
            current_id=current or None,
            messages=messages,
        )

    # --- writing ---------------------------------------------------------------

    async def write(
        self,
        conv: Conversation,
        *,
        listed: bool = True,
        ttl: int | None = None,
        replay_of: str | None = None,
        encoded: WritePlan | None = None,
    ) -> None:
        """Write a whole conversation (an import, a migrated one): messages
        and tree first, in batches, then its hash, which makes it exist.
        Writing the same conversation again is harmless (the migration
        resumes this way). ``listed``: put it in its owner's list. ``ttl``
        (seconds): every key expires (a replay's copy, ``replay_of`` the
        conversation it copies: hidden from lists and search). ``encoded``:
        ``plan(conv)``, when the caller made it already (in a thread)."""
        plan_ = encoded or plan(conv)
        await self._listed_for_cleanup(conv.id, conv.owner)
        prefix = self.keys.message_prefix(conv.id)
        calls: list[tuple[AsyncScript, list[str], list[Any]]] = [
            (self._messages, [self.keys.conversation(conv.id)], [prefix, batch, ttl or 0])
            for batch in plan_.messages
        ]
        calls += [
            (self._tree, [self.keys.tree(conv.id)], [batch, "1" if i == 0 else "0"])
            for i, batch in enumerate(plan_.tree)
        ]
        # Batches go in pipelines (no round trip each: Redis works through
        # them back to back), a few at a time (bounded memory on both sides);
        # each batch is one script call, so others' commands run between.
        for start in range(0, len(calls), BULK_PIPELINE):
            pipe = self.redis.pipeline(transaction=False)
            for script, keys, args in calls[start : start + BULK_PIPELINE]:
                queue_script(pipe, script, keys, args)
            await pipe.execute()
        pipe = self.redis.pipeline(transaction=False)
        meta = codec.conversation_fields(conv)
        if replay_of is not None:
            meta["rp"] = replay_of
        pipe.hset(self.keys.conversation(conv.id), mapping=meta)
        if ttl is not None:
            pipe.expire(self.keys.tree(conv.id), ttl)
            pipe.expire(self.keys.conversation(conv.id), ttl)
        if listed:
            pipe.zadd(
                self.keys.user_conversations(conv.owner), {conv.id: int(conv.updated_at * 1000)}
            )
        pipe.zrem(self.keys.cleanup(), _entry(conv.id, conv.owner))
        await pipe.execute()

    # --- deleting --------------------------------------------------------------

    async def delete(self, cid: str, owner: str) -> bool:
        """Delete a conversation; False when it is not ``owner``'s (or gone).

        First, at once, it disappears for every reader and writer and what it
        held is taken off its owner's counters (once, however often this
        runs); then its messages go in bounded batches."""
        await self._listed_for_cleanup(cid, owner)
        conv_keys = [self.keys.conversation(cid), self.keys.tree(cid)]
        marked = await self._mark(keys=conv_keys, args=[owner])
        if int(marked[0]) != 1:
            await self.redis.zrem(self.keys.cleanup(), _entry(cid, owner))
            return False
        messages, nbytes = int(marked[1]), int(marked[2])
        await self._forget(
            keys=[self.keys.user_conversations(owner), self.keys.user_storage(owner)],
            args=[cid, messages, nbytes],
        )
        await self.purge(cid)
        await self.redis.zrem(self.keys.cleanup(), _entry(cid, owner))
        return True

    async def purge(self, cid: str) -> int:
        """Delete a conversation's keys in batches, whatever state it is in."""
        conv_keys = [self.keys.conversation(cid), self.keys.tree(cid)]
        cursor, gone = "0", 0
        while True:
            cursor, n = await self._purge(
                keys=conv_keys, args=[self.keys.message_prefix(cid), cursor, PURGE_FIELDS]
            )
            gone += int(n)
            if str(cursor) == "0":
                return gone

    async def remove_failed(self, cid: str, message_id: str) -> int | None:
        removed, nbytes = await self._remove(
            keys=[self.keys.conversation(cid), self.keys.tree(cid)],
            args=[self.keys.message_prefix(cid), message_id],
        )
        return int(nbytes) if int(removed) else None

    # --- what a crash left half done ---------------------------------------------

    async def _listed_for_cleanup(self, cid: str, owner: str) -> None:
        await self.redis.zadd(self.keys.cleanup(), {_entry(cid, owner): _now_ms()})

    async def sweep(self, older_than_ms: int = CLEANUP_AFTER_MS) -> int:
        """Finish deletions and remove half-written imports that were begun
        more than ``older_than_ms`` ago and never finished (their process
        died). Safe to run from every process at once. Returns how many."""
        cutoff = _now_ms() - older_than_ms
        rows = cast(list[str], await self.redis.zrangebyscore(self.keys.cleanup(), "-inf", cutoff))
        for entry in rows:
            cid, _, owner = entry.partition(" ")
            meta = cast(
                list[str | None], await self.redis.hmget(self.keys.conversation(cid), ["o", "del"])
            )
            if meta[0] is not None and meta[1] is None:
                pass  # written completely: only its cleanup entry was left
            elif meta[0] is not None:
                await self.delete(cid, owner)
            else:
                await self.purge(cid)
            await self.redis.zrem(self.keys.cleanup(), entry)
        return len(rows)


def _entry(cid: str, owner: str) -> str:
    return f"{cid} {owner}"


def _now_ms() -> int:
    return int(time.time() * 1000)
