"""Paging the capped logs (audit, moderation) back to their oldest entry."""

from __future__ import annotations

from redis.asyncio import Redis

from shared.audit import AuditLog, Party
from shared.keys import Keys
from shared.moderation_log import FlagLog
from shared.streams import older_than


def test_nothing_is_older_than_the_first_possible_id() -> None:
    assert older_than("0-0") is None
    assert older_than("0") is None
    assert older_than("0-1") == "(0-1"
    assert older_than("1700000000000-3") == "(1700000000000-3"


async def test_paging_before_0_0_reads_nothing_instead_of_failing(redis: Redis, keys: Keys) -> None:
    # Redis refuses XREVRANGE with an exclusive end of (0-0: the console's
    # cursor there was a 500 (found by the OpenAPI fuzz test).
    audit = AuditLog(redis, keys)
    await audit.record("user.created", actor=Party(id="u1", name="ann"))
    assert await audit.read(before="0-0") == ([], None)
    flags = FlagLog(redis, keys)
    assert await flags.list(before="0-0") == ([], None)


async def test_paging_walks_every_entry_once(redis: Redis, keys: Keys) -> None:
    audit = AuditLog(redis, keys)
    for n in range(5):
        await audit.record("user.created", actor=Party(id=f"u{n}", name=f"user{n}"))
    seen: list[str] = []
    cursor: str | None = None
    while True:
        page, cursor = await audit.read(before=cursor, limit=2)
        seen += [e.actor.id for e in page if e.actor is not None]
        if cursor is None:
            break
    assert seen == [f"u{n}" for n in reversed(range(5))]
