"""What each user stores: conversations, messages and bytes of message text,
counted in Redis as they are written (``user_storage(uid)``, a hash tagged by
user), for the storage quotas the gateway enforces.

The counters are deltas kept per user, not a scan of the documents, so they
survive any change of where conversations live: every write adds to its
owner's counters in the same pipeline. The gateway counts new conversations,
imports, and each turn's messages when it queues the turn: the user's
message and the reply to come (so a worker adds one command, not two); the
worker adds the reply's bytes when it first stores it, or takes the message
back when it stores none. Deleting a conversation subtracts what it held,
read under WATCH in the same transaction as the delete.

A user whose hash lacks the ``v`` field has never been counted (an account
from before the counters existed): the first check of their quota counts
their conversations once (``recount``) and marks the hash.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from shared.keys import Keys

#: Counter fields, and the marker saying the user's counters are complete.
CONVERSATIONS = "conversations"
MESSAGES = "messages"
BYTES = "bytes"
COUNTED = "v"
FIELDS = (CONVERSATIONS, MESSAGES, BYTES, COUNTED)

#: Adds a user's existing conversations to their counters, once.
_RECOUNT = """
if redis.call('HEXISTS', KEYS[1], 'v') == 1 then return 0 end
redis.call('HINCRBY', KEYS[1], 'conversations', ARGV[1])
redis.call('HINCRBY', KEYS[1], 'messages', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'bytes', ARGV[3])
redis.call('HSET', KEYS[1], 'v', '1')
return 1
"""


@dataclass(frozen=True, slots=True)
class Stored:
    conversations: int = 0
    messages: int = 0
    bytes: int = 0
    #: False: the user was never counted (see ``recount``).
    counted: bool = True


def text_bytes(text: str) -> int:
    """Bytes a message's text takes (UTF-8, as ``JSON.STRLEN`` counts)."""
    return len(text.encode())


def queue_add(
    pipe: Pipeline,
    keys: Keys,
    uid: str,
    *,
    conversations: int = 0,
    messages: int = 0,
    nbytes: int = 0,
) -> None:
    """Add to (or, negative, take from) a user's counters on ``pipe``."""
    key = keys.user_storage(uid)
    for field, delta in ((CONVERSATIONS, conversations), (MESSAGES, messages), (BYTES, nbytes)):
        if delta:
            pipe.hincrby(key, field, delta)


def queue_read(pipe: Pipeline, keys: Keys, uid: str) -> None:
    pipe.hmget(keys.user_storage(uid), list(FIELDS))


def parse(row: list[str | None]) -> Stored:
    conversations, messages, nbytes, counted = row
    return Stored(
        int(conversations or 0), int(messages or 0), int(nbytes or 0), counted is not None
    )


def _queue_size(pipe: Redis | Pipeline, keys: Keys, cid: str) -> list[Any]:
    key = keys.conversation(cid)
    return [
        pipe.execute_command("JSON.OBJLEN", key, "$.messages"),
        pipe.execute_command("JSON.STRLEN", key, "$.messages.*.content"),
    ]


def _size(count: list[Any] | None, lengths: list[Any] | None) -> tuple[int, int]:
    messages = int(count[0] or 0) if count else 0
    return messages, sum(int(n or 0) for n in lengths or [])


async def conversation_size(redis: Redis | Pipeline, keys: Keys, cid: str) -> tuple[int, int]:
    """Messages and bytes of message text one conversation holds (two cheap
    RedisJSON reads: no document leaves Redis). ``redis`` may be a pipeline
    in immediate mode (under WATCH)."""
    count, lengths = [await reply for reply in _queue_size(redis, keys, cid)]
    return _size(count, lengths)


async def recount(redis: Redis, keys: Keys, uid: str) -> Stored:
    """Count a never-counted user's conversations once, and mark them counted."""
    cids = cast(list[str], await redis.zrange(keys.user_conversations(uid), 0, -1))
    messages = nbytes = 0
    for start in range(0, len(cids), 200):
        pipe = redis.pipeline(transaction=False)
        for cid in cids[start : start + 200]:
            _queue_size(pipe, keys, cid)
        replies = await pipe.execute(raise_on_error=False)
        for count, lengths in zip(replies[::2], replies[1::2], strict=True):
            if isinstance(count, Exception) or isinstance(lengths, Exception):
                continue  # deleted meanwhile
            m, b = _size(count, lengths)
            messages += m
            nbytes += b
    await redis.eval(_RECOUNT, 1, keys.user_storage(uid), len(cids), messages, nbytes)
    row = cast(list[str | None], await redis.hmget(keys.user_storage(uid), list(FIELDS)))
    return parse(row)
