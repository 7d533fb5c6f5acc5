"""Storage counters against a real Redis: an account from before the
counters is counted once on its first check, and deleting a conversation
takes exactly what it held off the counters."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from gateway.admission import Adds, Admission, Quotas
from gateway.errors import ApiError
from shared import storage_usage
from shared.conversation import Message, new_id
from shared.store import ConversationStore, NotFoundError
from tests.support.keys import KEYS


async def conversation(store: ConversationStore, redis: Redis, owner: str, *texts: str) -> str:
    conv = await store.create(owner)
    pipe = redis.pipeline(transaction=False)
    parent = None
    for text in texts:
        message = Message(id=new_id(), parent_id=parent, role="user", content=text)
        store.queue_add_message(pipe, conv.id, message, owner=owner)
        parent = message.id
    await pipe.execute()
    return conv.id


async def test_an_account_from_before_the_counters_is_counted_once(redis: Redis) -> None:
    store = ConversationStore(redis, KEYS)
    first = await conversation(store, redis, "old", "héllo", "world")
    await conversation(store, redis, "old", "x" * 100)
    admission = Admission(
        redis, KEYS, max_queued_turns=10, max_waiting_per_user=5, quotas=Quotas(3, 10, 1_000)
    )
    await admission.check("old", None, Adds(conversations=1))
    held = storage_usage.parse(
        await redis.hmget(KEYS.user_storage("old"), list(storage_usage.FIELDS))
    )
    assert held == storage_usage.Stored(2, 3, len("héllo".encode()) + 5 + 100, counted=True)
    await admission.check("old", None, Adds(conversations=1))  # not counted twice
    assert (
        storage_usage.parse(await redis.hmget(KEYS.user_storage("old"), list(storage_usage.FIELDS)))
        == held
    )
    with pytest.raises(ApiError) as refused:
        await admission.check("old", None, Adds(conversations=2))
    assert refused.value.code == "quota_exceeded"

    await store.delete(first, "old")
    after = storage_usage.parse(
        await redis.hmget(KEYS.user_storage("old"), list(storage_usage.FIELDS))
    )
    assert after == storage_usage.Stored(1, 1, 100, counted=True)
    with pytest.raises(NotFoundError):  # gone already: nothing more taken off
        await store.delete(first, "old")
    assert (
        storage_usage.parse(await redis.hmget(KEYS.user_storage("old"), list(storage_usage.FIELDS)))
        == after
    )
