"""The fence of a tool turn: which delivery of the turn holds it.

Each delivery that claims a tool turn bumps a generation (``claim``); every
write of its checkpoint (``checkpoint.py``) and, last, the write of its
reply (``store_reply``) happens only while that generation is still its
own. A worker that was only paused (not dead) while another took its turn
over is thus refused everything, the reply included: the check and the
write are one transaction (WATCH on the fence, then MULTI/EXEC with the
store's own add script), on keys of the conversation's slot only
(``Keys.turn_fence`` carries the conversation's hash tag), so there is no
moment between a passed check and the write in which a takeover can slip.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.exceptions import WatchError

from shared.conversation import Message
from shared.keys import TOOL_STEPS_TTL_S, Keys
from shared.store import ConversationStore


class Superseded(Exception):
    """Another worker took this turn over (its worker looked dead: a long
    pause) while this one still ran it: this one stops, storing nothing;
    the turn stays with the new worker (worker.py leaves it pending)."""


class Answered(Exception):
    """An earlier delivery of this turn stored its reply after this one
    read the conversation (it looked dead, but was only slow): this one
    runs nothing and re-sends that reply."""


class Fence:
    def __init__(self, redis: Redis, keys: Keys, conversation_id: str, turn_id: str) -> None:
        self.redis = redis
        self.key = keys.turn_fence(conversation_id, turn_id)
        self.reply_key = keys.message(conversation_id, turn_id)
        self.conversation_id = conversation_id

    async def claim(self) -> int:
        """This delivery's generation: one more than any before it; and, in
        the same transaction (one slot), whether the reply is stored
        already (``Answered``): a store by an earlier delivery came either
        before this claim, and is seen here, or after it, and was refused."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.incr(self.key)
        pipe.expire(self.key, TOOL_STEPS_TTL_S)
        pipe.exists(self.reply_key)
        gen, _, stored = await pipe.execute()
        if stored:
            raise Answered(self.reply_key)
        return int(gen)

    async def store_reply(
        self, store: ConversationStore, gen: str, reply: Message, owner: str
    ) -> Any:
        """Store the reply (``ConversationStore.queue_add_message``) only if
        generation ``gen`` still holds the turn, atomically: the add
        script's raw result, or ``Superseded`` (nothing written)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(self.key)
                if (await pipe.get(self.key) or "0") != gen:
                    raise Superseded(self.key)
                pipe.multi()  # type: ignore[no-untyped-call]
                store.queue_add_message(pipe, self.conversation_id, reply, owner=owner)
                (added,) = await pipe.execute()
            except WatchError as exc:  # claimed by another delivery meanwhile
                raise Superseded(self.key) from exc
        return added
