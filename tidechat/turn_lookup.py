"""Finding a recorded turn by its id (or a prefix of it) on the prompt and
dead-letter streams: what ``tidechat replay turn`` starts from."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import cast

from pydantic import ValidationError
from redis.asyncio import Redis

from shared.conversation import is_valid_id
from shared.streams import StreamEntries, TurnRequest
from tidechat.dead import decode_dead
from tidechat.ops import Ops, OpsError
from tidechat.timeline import PAGE

#: Shortest turn-id prefix accepted (the timeline shows 8 characters).
MIN_PREFIX = 6


@dataclass(slots=True)
class Found:
    turn: TurnRequest
    pool: str
    #: The turn's prompt-stream entry id (when it was queued), if known.
    entry_id: str | None
    #: Where it was found: a prompt stream, or the dead-letter stream.
    where: str
    dead: str | None = None


async def find_turn(ops: Ops, wanted: str) -> Found:
    """The turn with id ``wanted`` (or the one whose id starts with it) on any
    pool's prompt or dead-letter stream, newest entries first."""
    if not is_valid_id(wanted) or len(wanted) < MIN_PREFIX:
        raise OpsError(f"{wanted!r} is not a turn id (or its first {MIN_PREFIX}+ characters)")
    needle = '"turn_id":"' + wanted
    pools = await ops.pools()
    found: dict[str, Found] = {}
    for pool in pools:
        dead_key = ops.keys.dead(pool)
        for key in (ops.keys.prompts(pool), dead_key):
            async for entry_id, data in _scan(ops.redis, key, needle):
                try:
                    if key == dead_key:
                        row = decode_dead(pool, entry_id, {"d": data})
                        if row.letter is None or row.letter.turn is None:
                            continue
                        turn, queued_id = row.letter.turn, row.letter.entry_id
                        dead = f"{entry_id} ({row.letter.code}: {row.letter.error})"
                    else:
                        turn, queued_id, dead = (
                            TurnRequest.model_validate_json(data),
                            entry_id,
                            None,
                        )
                except ValidationError:
                    continue
                if not turn.turn_id.startswith(wanted):
                    continue
                hit = found.setdefault(turn.turn_id, Found(turn, pool, queued_id, key))
                hit.dead = hit.dead or dead
                hit.entry_id = hit.entry_id or queued_id
    if not found:
        raise OpsError(
            f"turn {wanted} not found on the prompt or dead-letter streams of pool "
            f"{', '.join(pools)} (a wrong id, or trimmed away)"
        )
    if len(found) > 1:
        raise OpsError(f"{wanted} matches several turns: {', '.join(sorted(found))}")
    return next(iter(found.values()))


async def _scan(redis: Redis, key: str, needle: str) -> AsyncIterator[tuple[str, str]]:
    """Entries of ``key`` whose payload contains ``needle``, newest first."""
    end = "+"
    while True:
        rows = cast(StreamEntries, await redis.xrevrange(key, max=end, count=PAGE))
        for entry_id, fields in rows:
            data = fields.get("d", "")
            if needle in data:
                yield entry_id, data
        if len(rows) < PAGE:
            return
        end = "(" + rows[-1][0]
