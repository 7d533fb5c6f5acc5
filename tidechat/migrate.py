"""``tidechat migrate``: bring the data in Redis to this release's layout
(``shared/schema.py``), in batches, resumably, idempotently, with progress.

From 1 (the previous release) to 2, in this order:

1. The search index is created (keys written after it are indexed as they
   are written).
2. Keys are renamed to the hash-tag scheme (docs/storage.md): an account
   ``tc:user:<uid>`` -> ``tc:user:{<uid>}``, its list ``…:convs``, a session
   stream ``tc:session:<sid>``, a pool's ``prompts``, ``dead``, ``workers``,
   ``metrics`` (RENAME keeps a stream's consumer groups and pending
   entries). A key whose new name exists already is left alone and
   reported. The previous release's resend markers (``tc:sent:…``, 15
   minutes of life) are dropped: the new ones live in the conversation's
   slot.
3. Every conversation document (``tc:conv:<cid>``, RedisJSON) is written in
   the new layout (``shared/store/bulk.py``, in batches of messages), then
   the document is deleted. A crash in between leaves the document: the
   next run writes the conversation again (harmless) and deletes it.
4. The version is written: gateways and workers start again.

Runs on the standalone Redis the previous release used (RENAME moves keys
between hash slots, which a Redis Cluster refuses), with every gateway and
worker stopped (they refuse to start until it is done). Two runs at once
are kept apart by a lock that expires if its holder dies.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from redis.asyncio import Redis

from shared import rjson
from shared.conversation import Conversation
from shared.keys import Keys
from shared.schema import SCHEMA_VERSION, current_version, stored_version
from shared.store.bulk import Bulk
from shared.store.search import ensure_index
from tidechat.ops import Ops, OpsError, glob_escape

#: Keys one SCAN call looks at.
SCAN_COUNT = 500
#: The migration lock's life (seconds), renewed as batches go by.
LOCK_TTL_S = 60


@dataclass(slots=True)
class Report:
    renamed: int = 0
    dropped: int = 0
    conversations: int = 0
    messages: int = 0
    skipped: list[str] = field(default_factory=list)


class Migration:
    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        *,
        search_messages: bool = True,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.search_messages = search_messages
        self.progress = progress or (lambda _text: None)
        self.bulk = Bulk(redis, keys)
        self.lock_id = f"{time.time():.6f}"
        self.report = Report()

    async def needed(self) -> bool:
        version = await stored_version(self.redis, self.keys)
        if version is None:
            return await current_version(self.redis, self.keys) == 1 or await self._any_document()
        if version > SCHEMA_VERSION:
            raise OpsError(
                f"the data is in layout version {version}, newer than this release "
                f"({SCHEMA_VERSION}); nothing to migrate with this release"
            )
        return version < SCHEMA_VERSION

    async def run(self) -> Report:
        """Migrate to ``SCHEMA_VERSION`` (nothing to do: returns at once)."""
        if not await self.needed():
            await self.redis.set(self.keys.schema(), SCHEMA_VERSION, nx=True)
            return self.report
        await self._lock()
        try:
            # The version the data is at, written first: renamed keys look
            # like this layout's, and a half-done run must keep every
            # gateway and worker out until it is finished.
            await self.redis.set(self.keys.schema(), 1, nx=True)
            await ensure_index(self.redis, self.keys, messages=self.search_messages)
            await self._rename_keys()
            await self._conversations()
            await self.redis.set(self.keys.schema(), SCHEMA_VERSION)
            await self.redis.hset(
                self.keys.migration(),
                mapping={"finished": time.time(), "version": SCHEMA_VERSION},
            )
        finally:
            await self.redis.delete(self._lock_key())
        return self.report

    # --- the lock ---------------------------------------------------------------

    def _lock_key(self) -> str:
        return self.keys.migration() + ":lock"

    async def _lock(self) -> None:
        if not await self.redis.set(self._lock_key(), self.lock_id, nx=True, ex=LOCK_TTL_S):
            raise OpsError(
                "another `tidechat migrate` is running (its lock expires a minute after it "
                "stops); try again later"
            )
        await self.redis.hset(self.keys.migration(), mapping={"started": time.time()})

    async def _renew(self) -> None:
        await self.redis.expire(self._lock_key(), LOCK_TTL_S)

    # --- step 2: key names ------------------------------------------------------

    def _renames(self, key: str) -> str | None:
        """The new name of a previous-release key, '' to drop it, None to keep it."""
        p = self.keys.prefix
        if not key.startswith(p):
            return None
        rest = key[len(p) :]
        kind, _, tail = rest.partition(":")
        if not tail or tail.startswith("{"):
            return None  # already tagged (or not ours)
        if kind == "user":
            uid, _, more = tail.partition(":")
            if more == "convs":
                return self.keys.user_conversations(uid)
            return self.keys.user(uid) if not more else None
        if kind == "session" and ":" not in tail:
            return self.keys.session(tail)
        if kind == "sent":
            return ""
        builders = {
            "prompts": self.keys.prompts,
            "dead": self.keys.dead,
            "workers": self.keys.workers,
            "metrics": self.keys.metrics,
        }
        if kind in builders and ":" not in tail:
            return builders[kind](tail)
        return None

    async def _rename_keys(self) -> None:
        pattern = glob_escape(self.keys.prefix) + "*"
        batch: list[tuple[str, str]] = []
        async for raw in self.redis.scan_iter(match=pattern, count=SCAN_COUNT):
            key = str(raw)
            new = self._renames(key)
            if new is not None:
                batch.append((key, new))
            if len(batch) >= SCAN_COUNT:
                await self._apply_renames(batch)
                batch = []
        await self._apply_renames(batch)
        self.progress(f"keys renamed: {self.report.renamed:,}; dropped: {self.report.dropped:,}")

    async def _apply_renames(self, batch: list[tuple[str, str]]) -> None:
        if not batch:
            return
        pipe = self.redis.pipeline(transaction=False)
        for key, new in batch:
            if new == "":
                pipe.delete(key)
            else:
                pipe.renamenx(key, new)
        for (key, new), result in zip(batch, await pipe.execute(), strict=True):
            if new == "":
                self.report.dropped += int(result)
            elif result:
                self.report.renamed += 1
            else:
                self.report.skipped.append(f"{key}: {new} exists already; left as it is")
        await self._renew()

    # --- step 3: conversations --------------------------------------------------

    async def _any_document(self) -> bool:
        async for _key in self._documents(count=100):
            return True
        return False

    def _documents(self, count: int = SCAN_COUNT) -> Any:
        pattern = glob_escape(self.keys.prefix + "conv:") + "*"
        return self.redis.scan_iter(match=pattern, count=count, _type="ReJSON-RL")

    async def _conversations(self) -> None:
        total = 0
        async for _key in self._documents():
            total += 1
        self.progress(f"conversations to convert: {total:,}")
        started = time.monotonic()
        last = 0.0
        async for raw in self._documents():
            await self._convert(str(raw))
            if time.monotonic() - last > 1.0 or self.report.conversations == total:
                last = time.monotonic()
                self.progress(
                    f"conversations {self.report.conversations:,}/{total:,}, "
                    f"messages {self.report.messages:,} "
                    f"({time.monotonic() - started:.1f} s)"
                )

    async def _convert(self, key: str) -> None:
        raw = await rjson.json_get(self.redis, key, "$")
        if raw is None:
            return  # converted by a concurrent run, or deleted
        data = json.loads(raw)[0]
        conv = Conversation.model_validate(data)
        await self.bulk.write(conv)
        await self.redis.delete(key)
        self.report.conversations += 1
        self.report.messages += len(conv.messages)
        await self.redis.hincrby(self.keys.migration(), "conversations", 1)
        await self._renew()


async def migrate(ops: Ops, args: argparse.Namespace) -> int:
    out: TextIO = sys.stderr
    version = await stored_version(ops.redis, ops.keys)

    def say(text: str) -> None:
        print(text, file=out, flush=True)

    search_messages = bool(getattr(ops.settings, "search_messages", True))
    migration = Migration(ops.redis, ops.keys, search_messages=search_messages, progress=say)
    if not await migration.needed():
        await ops.redis.set(ops.keys.schema(), SCHEMA_VERSION, nx=True)
        print(f"the data is in layout version {SCHEMA_VERSION} already: nothing to do")
        return 0
    say(f"migrating from layout version {version or 1} to {SCHEMA_VERSION}")
    report = await migration.run()
    for line in report.skipped:
        say(f"  note: {line}")
    print(
        f"migrated to layout version {SCHEMA_VERSION}: {report.conversations:,} conversations "
        f"({report.messages:,} messages), {report.renamed:,} keys renamed, "
        f"{report.dropped:,} resend markers dropped"
    )
    return 0
