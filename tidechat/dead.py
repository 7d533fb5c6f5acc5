"""``tidechat dead list|retry``: the dead-letter streams, a letter read as an
operator needs it (``decode_dead``, also for ``tidechat streams`` and
``tidechat turn``), and a failed turn queued again."""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass
from typing import Any, cast

from pydantic import ValidationError
from redis.exceptions import WatchError

from shared.conversation import now
from shared.keys import FIELD_DATA
from shared.store import ConversationStore
from shared.streams import DeadLetter, StreamEntries, TurnRequest, entry_ms, queue_turn
from tidechat.fmt import local_time, one_line, plural, terminal_width
from tidechat.ops import Ops, OpsError

_ENTRY_ID = re.compile(r"^\d{1,20}-\d{1,20}$")


@dataclass(slots=True)
class DeadRow:
    """A dead-letter entry: a failed turn, or a prompt-stream entry that was
    not a turn (``letter.turn`` None), or an entry that is not a letter."""

    entry_id: str
    pool: str
    letter: DeadLetter | None
    #: Why ``letter`` is None: the entry could not be read as a dead letter.
    problem: str | None = None

    @property
    def turn(self) -> TurnRequest | None:
        return self.letter.turn if self.letter is not None else None

    def summary(self) -> dict[str, Any]:
        base: dict[str, Any] = {"entry_id": self.entry_id, "pool": self.pool}
        if self.letter is None:
            return {**base, "malformed": True, "error": self.problem}
        letter = self.letter.model_dump(mode="json")
        # The letter's own entry_id is the turn's old prompt-stream entry.
        letter["prompt_entry_id"] = letter.pop("entry_id")
        if self.letter.turn is None:
            letter["malformed"] = True
        return {**base, **letter}


def decode_dead(pool: str, entry_id: str, fields: dict[str, str]) -> DeadRow:
    if FIELD_DATA not in fields:
        # Written by a release before dead letters had one shape: what is
        # left to say of it is its error.
        return DeadRow(entry_id, pool, None, fields.get("error") or "malformed entry")
    try:
        return DeadRow(entry_id, pool, DeadLetter.model_validate_json(fields[FIELD_DATA]))
    except ValidationError as exc:
        return DeadRow(entry_id, pool, None, f"unreadable dead letter: {exc}")


def dead_line(row: dict[str, Any], width: int) -> str:
    when = local_time(entry_ms(row["entry_id"]), date=True)
    if row.get("malformed"):
        return f"{row['entry_id']}  {when}  malformed: {row['error']}"
    turn = row["turn"]
    error = f"{row['code']}: " + one_line(str(row["error"]), max(width - 8 - len(row["code"]), 30))
    return (
        f"{row['entry_id']}  {when}  turn {turn['turn_id']}  model {turn['model']}  "
        f"delivered {row['deliveries']}x\n      {error}"
    )


async def dead_list(ops: Ops, args: argparse.Namespace) -> int:
    pools = [args.pool] if args.pool else await ops.pools()
    rows: list[DeadRow] = []
    for pool in pools:
        key = ops.keys.dead(pool)
        end = "+"
        while True:  # newest first, a page at a time
            page = cast(StreamEntries, await ops.redis.xrevrange(key, max=end, count=1_000))
            rows += [decode_dead(pool, eid, fields) for eid, fields in page]
            if len(page) < 1_000:
                break
            end = "(" + page[-1][0]
    if args.json:
        print(json.dumps([row.summary() for row in rows], indent=2))
        return 0
    if not rows:
        print(f"no dead letters in {', '.join(pools)}")
        return 0
    width = terminal_width()
    for row in rows:
        summary = row.summary()
        print(f"{row.pool}  " + dead_line(summary, width - len(row.pool) - 2))
        t = row.turn
        if t is not None:
            print(
                f"      conversation {t.conversation_id}  session {t.session_id}  "
                f"user {t.user_id}  kind {t.kind}"
            )
    print(f"({plural(len(rows), 'dead letter')}; `tidechat dead retry ID` queues one again)")
    return 0


async def dead_retry(ops: Ops, args: argparse.Namespace) -> int:
    entry_id: str = args.entry_id
    if not _ENTRY_ID.match(entry_id):
        raise OpsError(f"{entry_id!r} is not a stream entry id (like 1712345678901-0)")
    pools = [args.pool] if args.pool else await ops.pools()
    for pool in pools:
        rows = cast(StreamEntries, await ops.redis.xrange(ops.keys.dead(pool), entry_id, entry_id))
        if rows:
            return await _retry(ops, decode_dead(pool, entry_id, rows[0][1]))
    raise OpsError(
        f"no dead letter {entry_id} in pool {', '.join(pools)} (`tidechat dead list` shows them)"
    )


async def _retry(ops: Ops, row: DeadRow) -> int:
    """Queue the turn again and remove its dead letter, in one transaction.

    The failed attempt stored an empty assistant message with the turn's id
    (``finish_reason`` "error"); a worker finding a reply already stored for a
    turn only re-sends it, so that message is removed in the same
    transaction and the retried turn stores its reply in its place: the
    conversation still holds one reply for the turn, never two.
    """
    if row.turn is None:
        why = row.problem or (row.letter.error if row.letter else "malformed")
        raise OpsError(f"dead letter {row.entry_id} is not a turn ({why}); cannot retry")
    turn = row.turn.model_copy(update={"created_at": now()})
    keys, redis = ops.keys, ops.redis
    dead_key, prompts = keys.dead(row.pool), keys.prompts(row.pool)
    store = ConversationStore(redis, keys)
    if await store.head(turn.conversation_id) is None:
        raise OpsError(
            f"conversation {turn.conversation_id} no longer exists; nothing to retry "
            f"(remove the letter with XDEL {dead_key} {row.entry_id})"
        )
    failed = False
    for _attempt in range(5):
        async with redis.pipeline(transaction=True) as pipe:
            try:
                # WATCH: a concurrent retry of the same letter makes this
                # attempt start over (the dead letters and the prompts share
                # the pool's slot: one transaction).
                await pipe.watch(dead_key)
                if not await pipe.xrange(dead_key, row.entry_id, row.entry_id):
                    raise OpsError(f"dead letter {row.entry_id} was already retried or removed")
                # The failed reply out first (one script in the conversation's
                # slot; a reply that landed meanwhile stays): a retry that
                # fails after this finds no failed reply and goes on.
                removed = await store.remove_failed(turn.conversation_id, turn.turn_id)
                failed = failed or removed is not None
                pipe.multi()  # type: ignore[no-untyped-call]
                queue_turn(pipe, keys, row.pool, turn)
                pipe.xdel(dead_key, row.entry_id)
                results = await pipe.execute()
            except WatchError:
                continue
        new_id = results[-2]
        session_live = bool(await redis.exists(keys.session(turn.session_id)))
        print(
            f"requeued turn {turn.turn_id} (model {turn.model}) on {prompts} as entry {new_id}; "
            f"dead letter {row.entry_id} removed"
        )
        if failed:
            print(f"removed the failed reply stored for it in conversation {turn.conversation_id}")
        print(
            f"the reply streams to session {turn.session_id}"
            if session_live
            else f"session {turn.session_id} has expired: the reply is only stored in the "
            "conversation"
        )
        return 0
    raise OpsError(f"dead letter {row.entry_id} kept changing under the retry; try again")
