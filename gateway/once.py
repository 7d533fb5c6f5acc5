"""Acting on a frame once, however often a client sends it.

A client that lost its socket resends what it did not see acknowledged, with
the same ``client_id``. Recording the ``client_id`` and writing the turn must
be one atomic step: as two, a Redis failure between them either drops a
resend for good or leaves a marker for a message that was never stored. So a
frame with a ``client_id`` runs its pipeline's commands inside one Lua
script, only if the marker was not there yet.
"""

from __future__ import annotations

import json

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import ResponseError

_ONCE = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  return false
end
local out = {}
for i, command in ipairs(cjson.decode(ARGV[2])) do
  local reply = redis.pcall(unpack(command))
  if type(reply) == 'table' and reply.err then
    out[i] = reply.err
  else
    out[i] = ''
  end
end
return out
"""


class Once:
    def __init__(self, redis: Redis, ttl: int) -> None:
        self._script = redis.register_script(_ONCE)
        self._ttl = ttl

    async def execute(self, pipe: Pipeline, guard: str | None) -> list[Exception | None] | None:
        """Run ``pipe``'s commands; None when ``guard`` was already set (a
        duplicate: nothing ran). Otherwise each command's error, or None."""
        if guard is None:
            results = await pipe.execute(raise_on_error=False)
            return [r if isinstance(r, Exception) else None for r in results]
        commands = [[_text(arg) for arg in args] for args, _options in pipe.command_stack]
        await pipe.reset()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
        out = await self._script(keys=[guard], args=[self._ttl, json.dumps(commands)])
        if out is None:
            return None
        return [ResponseError(e) if e else None for e in out]


def _text(arg: object) -> str:
    return arg.decode() if isinstance(arg, bytes) else str(arg)
