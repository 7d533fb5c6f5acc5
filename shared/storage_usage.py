"""What each user stores: conversations, messages and bytes of message text,
counted in Redis as they are written (``user_storage(uid)``, a hash tagged by
user), for the storage quotas the gateway enforces.

The counters are deltas kept per user, not a scan of the documents, so they
survive any change of where conversations live: every write adds to its
owner's counters in the same pipeline. The gateway counts new conversations,
imports, and each turn's messages when it queues the turn: the user's
message and the reply to come (so a worker adds one command, not two); the
worker adds the reply's bytes when it first stores it, or takes the message
back when it stores none. Deleting a conversation subtracts what it held
(its tree's ``.n`` and ``.b``, returned by the script that marks it
deleted), in one script on the user's keys that also takes it off their
list: a delete that runs twice subtracts once.

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
_RECOUNT = """#!lua
if redis.call('HEXISTS', KEYS[1], 'v') == 1 then return 0 end
redis.call('HINCRBY', KEYS[1], 'conversations', ARGV[1])
redis.call('HINCRBY', KEYS[1], 'messages', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'bytes', ARGV[3])
redis.call('HSET', KEYS[1], 'v', '1')
return 1
"""


#: A conversation leaves its owner: off their list and, the first time
#: only (ZREM says so), off their counters if they are counted. KEYS: the
#: user's conversations, their storage. ARGV: conversation id, messages,
#: bytes.
FORGET_CONVERSATION = """#!lua
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
if redis.call('HEXISTS', KEYS[2], 'v') == 0 then return 1 end
redis.call('HINCRBY', KEYS[2], 'conversations', -1)
redis.call('HINCRBY', KEYS[2], 'messages', -tonumber(ARGV[2]))
redis.call('HINCRBY', KEYS[2], 'bytes', -tonumber(ARGV[3]))
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
    """Bytes a message's text takes (UTF-8, as Redis counts a string's length)."""
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


def _queue_size(pipe: Redis | Pipeline, keys: Keys, cid: str) -> Any:
    return pipe.hmget(keys.tree(cid), [".n", ".b"])


async def conversation_size(redis: Redis | Pipeline, keys: Keys, cid: str) -> tuple[int, int]:
    """Messages and bytes of message text one conversation holds (its
    tree's counters, kept by the script that adds a message)."""
    count, nbytes = await _queue_size(redis, keys, cid)
    return int(count or 0), int(nbytes or 0)


async def recount(redis: Redis, keys: Keys, uid: str) -> Stored:
    """Count a never-counted user's conversations once, and mark them counted."""
    cids = cast(list[str], await redis.zrange(keys.user_conversations(uid), 0, -1))
    messages = nbytes = 0
    for start in range(0, len(cids), 200):
        pipe = redis.pipeline(transaction=False)
        for cid in cids[start : start + 200]:
            _queue_size(pipe, keys, cid)
        for count, size in await pipe.execute():
            messages += int(count or 0)
            nbytes += int(size or 0)
    await redis.eval(_RECOUNT, 1, keys.user_storage(uid), len(cids), messages, nbytes)
    row = cast(list[str | None], await redis.hmget(keys.user_storage(uid), list(FIELDS)))
    return parse(row)
