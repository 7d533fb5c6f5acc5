"""The version of the data layout in Redis (``Keys.schema``), and the check
every gateway and worker makes at start.

- 1: the previous release: one RedisJSON document per conversation
  (``tc:conv:<cid>`` with ``$.messages``), keys without hash tags. It
  never wrote a version: a Redis with no version whose accounts have
  untagged names (``tc:user:<uid>``) is at 1.
- 2: this layout (docs/storage.md): a conversation's keys under its id's
  hash tag, one hash per message, per-user keys under ``{uid}``, pools'
  and sessions' keys under theirs.

A Redis with no version and no such account is a new deployment: the first
process to start writes the current version. Any other mismatch stops the
process with a message naming what to do (``tidechat migrate``; or run the
newer release), since reading one layout with the other's code would
lose or hide data.
"""

from __future__ import annotations

from typing import Any, cast

from redis.asyncio import Redis

from shared.keys import Keys

#: The layout this code reads and writes.
SCHEMA_VERSION = 2


class SchemaError(RuntimeError):
    """The data in Redis is in a layout this code does not serve."""


async def stored_version(redis: Redis, keys: Keys) -> int | None:
    """The version written in Redis, or None when none is."""
    raw = cast(str | None, await redis.get(keys.schema()))
    return int(raw) if raw is not None else None


async def current_version(redis: Redis, keys: Keys) -> int:
    """The layout the data is in: the stored version, or 1 when there is
    none but the previous release left accounts, or the current one for an
    empty deployment (then written, so that it stays so)."""
    version = await stored_version(redis, keys)
    if version is not None:
        return version
    # No version: look at one account (every conversation has an owner).
    # The previous release named its hash without a hash tag.
    some = cast(list[Any], await redis.hrandfield(keys.usernames(), 1, withvalues=True))
    if some and isinstance(some[0], list):  # RESP3: [[name, uid]]
        some = some[0]
    if some and await redis.exists(keys.v1_user(str(some[1]))):
        return 1
    await redis.set(keys.schema(), SCHEMA_VERSION, nx=True)
    return cast(int, await stored_version(redis, keys))


async def require_schema(redis: Redis, keys: Keys) -> None:
    """Raise ``SchemaError`` unless the data is in this code's layout (and
    no migration is running)."""
    version = await current_version(redis, keys)
    if version > SCHEMA_VERSION:
        raise SchemaError(
            f"the data in Redis is in layout version {version}, newer than this release "
            f"knows ({SCHEMA_VERSION}): run the release that wrote it (or a newer one)"
        )
    if version < SCHEMA_VERSION:
        raise SchemaError(
            f"the data in Redis is in layout version {version}, from a previous release; "
            f"this release needs version {SCHEMA_VERSION}. Stop every gateway and worker, "
            "then run `tidechat migrate` (resumable; it prints its progress), and start "
            "them again (`tidechat up` migrates by itself)"
        )
