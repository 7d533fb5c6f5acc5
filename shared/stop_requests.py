"""Stop requests on the wire, written by the gateway (the Stop button) and
``tidechat replay`` (a replay that timed out), heard by every worker
(``worker/cancel.py``).

A stop is the key ``cancel(turn_id)`` (value: the requesting user, with a
TTL, for a worker that starts the turn later) and the message
``"<turn_id> <user_id>"`` on the cancel channel. One script sets the key
``NX`` and publishes only then: a repeated stop of one turn changes nothing
and costs no worker anything.
"""

from __future__ import annotations

from redis.asyncio import Redis

from shared.keys import CANCEL_TTL_S, Keys

_ANNOUNCE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  redis.call('PUBLISH', ARGV[3], ARGV[4])
  return 1
end
return 0
"""


def stop_message(turn_id: str, user_id: str) -> str:
    return f"{turn_id} {user_id}"


def parse_stop_message(data: str) -> tuple[str, str]:
    """(turn id, user id) of a message on the cancel channel."""
    turn_id, _, user_id = data.partition(" ")
    return turn_id, user_id


class StopAnnouncer:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.keys = keys
        self._announce = redis.register_script(_ANNOUNCE)

    async def announce(self, user_id: str, turn_id: str) -> bool:
        """Record the stop and tell the workers; False when it was asked before."""
        first = await self._announce(
            keys=[self.keys.cancel(turn_id)],
            args=[
                user_id,
                CANCEL_TTL_S,
                self.keys.cancel_channel(),
                stop_message(turn_id, user_id),
            ],
        )
        return bool(first)
