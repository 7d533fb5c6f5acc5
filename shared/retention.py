"""Retention: conversations nobody has touched for N days, deleted per the
policy of their owner's groups (the strictest one that is on).

Everything goes through the conversation store's public methods
(``list_for_user``, ``delete``), never its keys, so a change of the store's
layout changes nothing here. A user's list is newest first, so once a page
reaches a conversation older than the cutoff, every one after it is older
too: a sweep reads a user's recent conversations once and deletes the rest
a batch at a time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from pydantic import BaseModel
from redis.asyncio import Redis

from shared.groups import GroupStore
from shared.keys import JOB_BATCH, Keys
from shared.store import ConversationStore

DAY_S = 86_400


class GroupPreview(BaseModel):
    name: str
    days: int
    on: bool
    users: int
    #: Conversations of the members untouched for ``days`` now.
    conversations: int


class Preview(BaseModel):
    #: Whether some group's policy is on (a sweep would delete something).
    enabled: bool
    groups: list[GroupPreview]
    #: What a sweep would delete now, under the policies that are on.
    total: int
    last: dict[str, float | int | str] | None = None


async def policies(redis: Redis, keys: Keys) -> dict[str, int]:
    """Each user with a retention policy on: the strictest of their groups' (days)."""
    groups = GroupStore(redis, keys)
    out: dict[str, int] = {}
    for name, group in (await groups.all()).items():
        days = group.retention
        if days is None:
            continue
        for uid in await groups.members(name):
            out[uid] = min(out.get(uid, days), days)
    return out


async def expired(
    store: ConversationStore, uid: str, cutoff: float, batch: int = JOB_BATCH
) -> AsyncIterator[list[str]]:
    """Batches of ``uid``'s conversations last updated before ``cutoff``
    (Unix seconds), oldest pages last; the caller deletes each batch before
    asking for the next (the cursor stays valid: it points above them)."""
    cursor: str | None = None
    while True:
        page, cursor = await store.list_for_user(uid, limit=batch, cursor=cursor)
        old = [c.id for c in page if c.updated_at < cutoff]
        if old:
            yield old
        if cursor is None or not page:
            return


async def count_expired(store: ConversationStore, uid: str, cutoff: float) -> int:
    n = 0
    async for ids in expired(store, uid, cutoff, batch=200):
        n += len(ids)
    return n


async def preview(redis: Redis, keys: Keys, now: float) -> Preview:
    """What each group's policy would delete now (on or not yet), and what a
    sweep would delete under the policies that are on."""
    groups = GroupStore(redis, keys)
    store = ConversationStore(redis, keys)
    rows: list[GroupPreview] = []
    for name, group in (await groups.all()).items():
        if group.retention_days is None:
            continue
        members = await groups.members(name)
        cutoff = now - group.retention_days * DAY_S
        count = 0
        for uid in members:
            count += await count_expired(store, uid, cutoff)
        rows.append(
            GroupPreview(
                name=name,
                days=group.retention_days,
                on=group.retention_on,
                users=len(members),
                conversations=count,
            )
        )
    plan = await policies(redis, keys)
    total = 0
    for uid, days in plan.items():
        total += await count_expired(store, uid, now - days * DAY_S)
    return Preview(enabled=bool(plan), groups=rows, total=total)
