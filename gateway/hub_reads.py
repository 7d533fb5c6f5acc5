"""How the session hub (``gateway/hub.py``) reads its streams: one XREAD
on a plain Redis, one per hash slot on a Redis Cluster node.

On a plain Redis one blocking XREAD covers the wake stream and every
watched session stream, whatever their keys: an idle gateway costs Redis
one blocked read, and an event reaches its socket as soon as it is written.

A cluster node refuses a command whose keys hash to different slots
(``CROSSSLOT``), and every session stream has a slot of its own
(``tc:session:{sid}``). There, each round reads the streams grouped by slot,
one XREAD (not blocking) per group, all in one pipeline (one round trip; a
cluster client would split it by node). When none had anything, the reader
blocks on its wake stream alone for ``READER_POLL_MS``: a subscription
change still wakes it at once, but a session event waits for the end of
that poll. So on a cluster an event is delivered up to ``READER_POLL_MS``
late, and an idle gateway with sessions open costs Redis one XREAD per
slot in use each poll (docs/redis.md, "Cross-slot checking").
"""

from __future__ import annotations

from typing import cast

from redis.asyncio import Redis
from redis.crc import key_slot
from redis.exceptions import ResponseError
from redis.typing import KeyT, StreamIdT

from shared.keys import READER_BLOCK_MS, READER_COUNT, READER_POLL_MS
from shared.streams import StreamResponse


async def is_cluster_node(redis: Redis) -> bool:
    """Whether ``redis`` runs in cluster mode (``INFO cluster``); False when
    it cannot tell (a managed Redis that hides INFO sections)."""
    try:
        info = await redis.info("cluster")
    except ResponseError:
        return False
    return str(info.get("cluster_enabled", "0")) == "1"


def by_slot(streams: dict[str, str]) -> list[dict[str, str]]:
    """``streams`` (key -> cursor) in groups whose keys share a hash slot."""
    groups: dict[int, dict[str, str]] = {}
    for key, cursor in streams.items():
        groups.setdefault(key_slot(key.encode()), {})[key] = cursor
    return list(groups.values())


async def read_streams(
    reader: Redis, wake_key: str, streams: dict[str, str], *, per_slot: bool
) -> StreamResponse:
    """Entries after each cursor of ``streams`` (the wake stream's among
    them), blocking until one arrives or the reader's block time ends."""
    if not per_slot:
        # redis-py types ``streams`` as an invariant dict[KeyT, StreamIdT]
        # (it only reads it), and the reply loosely for all client kinds.
        reply = await reader.xread(
            cast(dict[KeyT, StreamIdT], streams), count=READER_COUNT, block=READER_BLOCK_MS
        )
        return cast(StreamResponse, reply or [])
    others = {key: cursor for key, cursor in streams.items() if key != wake_key}
    if others:
        pipe = reader.pipeline(transaction=False)
        for group in by_slot(others):
            pipe.xread(cast(dict[KeyT, StreamIdT], group), count=READER_COUNT)
        found = [
            item
            for reply in await pipe.execute()
            for item in cast(StreamResponse, reply or [])
            if item[1]
        ]
        if found:
            return found
    wake = {wake_key: streams[wake_key]}
    block = READER_POLL_MS if others else READER_BLOCK_MS
    reply = await reader.xread(cast(dict[KeyT, StreamIdT], wake), count=READER_COUNT, block=block)
    return cast(StreamResponse, reply or [])
