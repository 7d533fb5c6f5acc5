"""Fair turns: one user's queue cannot stand in front of everyone else's.

Every turn of a pool used to go straight onto the pool's one FIFO stream,
so a user who queued 30 slow turns made every other user wait for all 30.
Now each user holds at most ``per_user`` turns (*slots*) on the shared
stream; the rest wait in that user's own *line*. When a turn that holds a
slot is acknowledged, the same script hands the slot to its user's next
waiting turn, which joins the stream at the back, behind every other user's
turns: the pool serves its users round-robin, each at most ``per_user`` at
a time.

Keys (all hash-tagged by pool, so one pool's keys share a slot):

- ``fair_held(pool)``: hash, stream entry id -> user id, for every turn on
  the stream that holds a slot;
- ``fair_counts(pool)``: hash, user id -> slots held (the entries of
  ``fair_held`` with that user);
- ``line(pool, uid)``: list, the user's waiting turn ids, oldest first;
- ``fair_waiting(pool)``: hash, turn id -> the turn (``TurnRequest`` JSON),
  for every turn waiting in any line of the pool;
- ``fair_lines(pool)``: set of the users whose line is not empty.

Every change is one Lua script, so a slot is taken and given together with
the stream entry it belongs to, and released exactly once: releasing is
guarded by deleting the entry's ``fair_held`` field, so a turn finished
twice (a takeover racing a frozen worker) or never admitted here (``tidechat
dead retry``, ``replay``, a turn queued before an upgrade) releases nothing.
What can still drift (an entry acknowledged or deleted outside a worker's
finish, e.g. a malformed turn dropped) is repaired by ``repair``, which every
worker runs periodically: a slot whose entry is no longer on the stream
unfinished is given back, and lines below their share are topped up.

Turns moved from a line onto the stream keep their ``created_at``; the
prompt stream key is not hash-tagged yet (the storage issue renames it to
``prompts:{pool}``); until then these scripts touch two slots, which only a
Redis Cluster would refuse.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import ResponseError

from shared.keys import FIELD_DATA, WORKER_GROUP, Keys
from shared.streams import TurnRequest, parse_stream_id

#: Moves the user's next waiting turn (a line holds ids; a turn stopped while
#: waiting has been lifted out already and is skipped) onto the stream,
#: holding a slot. KEYS: stream, held, line, waiting, lines; returns the new
#: entry id or false. Shared by the scripts below.
_PROMOTE = """
local function promote(stream, held, line, waiting, lines, uid)
  local tid = redis.call('LPOP', line)
  local id = false
  while tid do
    local turn = redis.call('HGET', waiting, tid)
    if turn then
      redis.call('HDEL', waiting, tid)
      id = redis.call('XADD', stream, '*', '@FIELD@', turn)
      redis.call('HSET', held, id, uid)
      break
    end
    tid = redis.call('LPOP', line)
  end
  if redis.call('LLEN', line) == 0 then redis.call('SREM', lines, uid) end
  return id
end
""".replace("@FIELD@", FIELD_DATA)

#: A new turn. KEYS: stream, held, counts, line, waiting, lines.
#: ARGV: user id, per-user slots, turn id, turn JSON.
#: Onto the stream when the user holds fewer slots than their share and has
#: nobody waiting in their line (a turn never overtakes the user's own);
#: otherwise at the back of their line.
ADMIT = """
local n = tonumber(redis.call('HGET', KEYS[3], ARGV[1]) or '0')
if n < tonumber(ARGV[2]) and redis.call('LLEN', KEYS[4]) == 0 then
  local id = redis.call('XADD', KEYS[1], '*', '@FIELD@', ARGV[4])
  redis.call('HSET', KEYS[2], id, ARGV[1])
  redis.call('HINCRBY', KEYS[3], ARGV[1], 1)
  return id
end
redis.call('RPUSH', KEYS[4], ARGV[3])
redis.call('HSET', KEYS[5], ARGV[3], ARGV[4])
redis.call('SADD', KEYS[6], ARGV[1])
return false
""".replace("@FIELD@", FIELD_DATA)

#: A turn is over: acknowledge it and hand its slot on. KEYS: stream, held,
#: counts, line (of ARGV[3]), waiting, lines. ARGV: group, entry id, user id
#: of the turn as the worker knows it, per-user slots. Returns 1 when a slot
#: was released. (A user holding more than their share, after the share was
#: lowered, gives the slot back instead of passing it on.)
RELEASE = (
    _PROMOTE
    + """
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
local owner = redis.call('HGET', KEYS[2], ARGV[2])
if not owner then return 0 end
redis.call('HDEL', KEYS[2], ARGV[2])
if owner == ARGV[3] and redis.call('LLEN', KEYS[4]) > 0
    and tonumber(redis.call('HGET', KEYS[3], owner) or '0') <= tonumber(ARGV[4])
    and promote(KEYS[1], KEYS[2], KEYS[4], KEYS[5], KEYS[6], owner) then
  return 1
end
if redis.call('HINCRBY', KEYS[3], owner, -1) <= 0 then redis.call('HDEL', KEYS[3], owner) end
return 1
"""
)

#: A slot whose stream entry is gone or finished (found by ``repair``):
#: given back without promoting (``TOP_UP`` does that). KEYS: held, counts.
#: ARGV: entry id. Returns the owner, or false when it was released already.
FORGET = """
local owner = redis.call('HGET', KEYS[1], ARGV[1])
if not owner then return false end
redis.call('HDEL', KEYS[1], ARGV[1])
if redis.call('HINCRBY', KEYS[2], owner, -1) <= 0 then redis.call('HDEL', KEYS[2], owner) end
return owner
"""

#: Fill a user's share from their line. KEYS: stream, held, counts, line,
#: waiting, lines. ARGV: user id, per-user slots. Returns turns moved.
TOP_UP = (
    _PROMOTE
    + """
local n = tonumber(redis.call('HGET', KEYS[3], ARGV[1]) or '0')
local moved = 0
while n < tonumber(ARGV[2]) do
  if not promote(KEYS[1], KEYS[2], KEYS[4], KEYS[5], KEYS[6], ARGV[1]) then break end
  n = n + 1
  moved = moved + 1
end
if moved > 0 then redis.call('HSET', KEYS[3], ARGV[1], n) end
if redis.call('LLEN', KEYS[4]) == 0 then redis.call('SREM', KEYS[6], ARGV[1]) end
return moved
"""
)

#: Stop a turn still waiting in its user's line: it goes onto the stream at
#: once, holding no slot, so a worker ends it (a stop remembered or its
#: cancel key read) with a stopped reply the client sees. KEYS: stream,
#: line, waiting, lines. ARGV: turn id, user id. Returns the entry id or
#: false (not waiting in this user's line).
LIFT = """
if redis.call('LREM', KEYS[2], 1, ARGV[1]) == 0 then return false end
local turn = redis.call('HGET', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
if redis.call('LLEN', KEYS[2]) == 0 then redis.call('SREM', KEYS[4], ARGV[2]) end
if not turn then return false end
return redis.call('XADD', KEYS[1], '*', '@FIELD@', turn)
""".replace("@FIELD@", FIELD_DATA)


@dataclass(frozen=True, slots=True)
class LineStats:
    """A pool's lines, for ``/ready``, ``/metrics`` and ``tidechat streams``."""

    #: Turns waiting in users' lines (not yet on the stream).
    waiting: int
    #: Users with a turn waiting.
    waiting_users: int


class FairLines:
    """The scripts above, bound to a client and a key prefix."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._forget = redis.register_script(FORGET)
        self._top_up = redis.register_script(TOP_UP)
        self._lift = redis.register_script(LIFT)

    def _pool_keys(self, pool: str, uid: str) -> list[str]:
        k = self.keys
        return [
            k.prompts(pool),
            k.fair_held(pool),
            k.fair_counts(pool),
            k.line(pool, uid),
            k.fair_waiting(pool),
            k.fair_lines(pool),
        ]

    def queue_admit(self, pipe: Pipeline, pool: str, turn: TurnRequest, per_user: int) -> None:
        """Queue a new turn on ``pipe`` (onto the stream or into its user's line).

        EVAL with the script's text rather than EVALSHA: a pipeline never
        meets NOSCRIPT (a restarted Redis has forgotten every script), and
        ``gateway/once.py`` recognises the text and runs it inline."""
        keys = self._pool_keys(pool, turn.user_id)
        pipe.eval(
            ADMIT, len(keys), *keys, turn.user_id, per_user, turn.turn_id, turn.model_dump_json()
        )

    def queue_release(
        self, pipe: Pipeline, pool: str, entry_id: str, uid: str, per_user: int
    ) -> None:
        """Acknowledge a finished turn and hand its slot to its user's next one."""
        keys = self._pool_keys(pool, uid)
        pipe.eval(RELEASE, len(keys), *keys, WORKER_GROUP, entry_id, uid, per_user)

    async def lift(self, pools: list[str], uid: str, turn_id: str) -> bool:
        """Move a stopped turn out of ``uid``'s line in whichever pool it waits."""
        if not pools:
            return False
        pipe = self.redis.pipeline(transaction=False)
        k = self.keys
        for pool in pools:
            keys = [k.prompts(pool), k.line(pool, uid), k.fair_waiting(pool), k.fair_lines(pool)]
            await self._lift(keys=keys, args=[turn_id, uid], client=pipe)
        return any(await pipe.execute())

    async def stats(self, pool: str) -> LineStats:
        pipe = self.redis.pipeline(transaction=False)
        pipe.hlen(self.keys.fair_waiting(pool))
        pipe.scard(self.keys.fair_lines(pool))
        waiting, users = await pipe.execute()
        return LineStats(int(waiting), int(users))

    async def repair(self, pool: str, per_user: int) -> tuple[int, int]:
        """Give back slots whose turn is no longer on the stream unfinished,
        then top up every line below its share. Returns (slots given back,
        turns moved). Safe to run by every worker at once: each step is a
        script guarded by the state it changes."""
        lost = await self._lost_slots(pool)
        k = self.keys
        for entry_id in lost:
            await self._forget(keys=[k.fair_held(pool), k.fair_counts(pool)], args=[entry_id])
        moved = 0
        users = cast(set[str], await self.redis.smembers(k.fair_lines(pool)))
        for uid in sorted(users):
            got = await self._top_up(keys=self._pool_keys(pool, uid), args=[uid, per_user])
            moved += int(got)
        return len(lost), moved

    async def _lost_slots(self, pool: str) -> list[str]:
        """Entries holding a slot that are neither pending (delivered, not
        acknowledged) nor waiting for delivery on the stream."""
        k = self.keys
        held = cast(dict[str, str], await self.redis.hgetall(k.fair_held(pool)))
        if not held:
            return []
        stream = k.prompts(pool)
        try:
            groups: list[dict[str, Any]] = await self.redis.xinfo_groups(stream)
        except ResponseError:  # no stream: nothing held is there
            return list(held)
        group = next((g for g in groups if g.get("name") == WORKER_GROUP), None)
        delivered = parse_stream_id(str(group["last-delivered-id"])) if group else (0, 0)
        pipe = self.redis.pipeline(transaction=False)
        ids = list(held)
        for entry_id in ids:
            if group is not None and parse_stream_id(entry_id) <= delivered:
                pipe.xpending_range(stream, WORKER_GROUP, entry_id, entry_id, 1)
            else:
                pipe.xrange(stream, entry_id, entry_id)
        found = await pipe.execute()
        return [entry_id for entry_id, rows in zip(ids, found, strict=True) if not rows]


__all__ = ["FairLines", "LineStats"]
