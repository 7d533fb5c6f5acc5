"""Acting on a frame once, however often a client sends it.

A client that lost its socket resends what it did not see acknowledged, with
the same ``client_id``. Recording the ``client_id`` and writing the turn must
be one atomic step: as two, a Redis failure between them either drops a
resend for good or leaves a marker for a message that was never stored. So a
frame with a ``client_id`` runs its pipeline's commands inside one Lua
script, only if the marker was not there yet.

A script cannot call EVAL, so scripts the pipeline EVALs (queuing a turn
fairly, ``shared/fairness.py``) are compiled into this one as local
functions and run inline, by name.

A pipeline may start with a precondition (the store's check that a
conversation has not moved on): run as the script's first command, its
error stops the script before any write (and the ``client_id`` marker is
taken back, so the client may send the frame again once it has caught up).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import ResponseError

_ONCE = """
if #KEYS > 0 and not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  return false
end
local precondition = ARGV[3] == '1'
local out = {}
for i, command in ipairs(cjson.decode(ARGV[2])) do
  local reply
  if command[1] == '@INLINE' then
    local n = tonumber(command[3])
    local k, a = {}, {}
    for j = 4, 3 + n do k[#k + 1] = command[j] end
    for j = 4 + n, #command do a[#a + 1] = command[j] end
    local ok, result = pcall(inline[command[2]], k, a)
    if ok then reply = result elseif type(result) == 'table' then reply = result
    else reply = {err = tostring(result)} end
  else
    reply = redis.pcall(unpack(command))
  end
  if type(reply) == 'table' and reply.err then
    out[i] = reply.err
    if i == 1 and precondition then
      if #KEYS > 0 then redis.call('DEL', KEYS[1]) end
      return out
    end
  else
    out[i] = ''
  end
end
return out
"""


def _inline(scripts: Mapping[str, str]) -> str:
    """Each script as a local function taking its own KEYS and ARGV."""
    parts = ["local inline = {}"]
    for name, body in scripts.items():
        parts.append(f"inline['{name}'] = function(KEYS, ARGV)\n{body}\nend")
    return "\n".join(parts) + "\n"


class Once:
    def __init__(self, redis: Redis, ttl: int, inline: Mapping[str, str] | None = None) -> None:
        """``inline``: name -> Lua script that pipelines given here may EVAL."""
        inline = dict(inline or {})
        self._script = redis.register_script(_inline(inline) + _ONCE)
        self._names = {body: name for name, body in inline.items()}
        self._ttl = ttl

    async def execute(
        self, pipe: Pipeline, guard: str | None, *, precondition: bool = False
    ) -> list[Exception | None] | None:
        """Run ``pipe``'s commands; None when ``guard`` was already set (a
        duplicate: nothing ran). Otherwise each command's error, or None.

        ``precondition``: the first command is a check; if it fails, nothing
        else runs (the list then holds its error alone) and ``guard`` is
        not kept."""
        if guard is None and not precondition:
            results = await pipe.execute(raise_on_error=False)
            return [r if isinstance(r, Exception) else None for r in results]
        commands = [self._command(args) for args, _options in pipe.command_stack]
        await pipe.reset()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
        out = await self._script(
            keys=[] if guard is None else [guard],
            args=[self._ttl, json.dumps(commands), "1" if precondition else "0"],
        )
        if out is None:
            return None
        return [ResponseError(e) if e else None for e in out]

    def _command(self, args: tuple[object, ...]) -> list[str]:
        text = [_text(arg) for arg in args]
        if text[0].upper() == "EVAL" and text[1] in self._names:
            return ["@INLINE", self._names[text[1]], *text[2:]]
        return text


def _text(arg: object) -> str:
    return arg.decode() if isinstance(arg, bytes) else str(arg)
