"""The one-node Redis Cluster fixture (``cluster_redis_url``): a plain client
works on it, and what would break on a real Redis Cluster fails here too,
with CROSSSLOT (redis-py raises ``ClusterCrossSlotError``, even on a plain
client). How to run the whole suite on it: tests/conftest.py."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import ClusterCrossSlotError, ResponseError

from shared.redis_client import make_redis

#: Two keys of one conversation, under one hash tag: one slot.
TAGGED = ("x:conv:{c1}", "x:conv:{c1}:msgs")
#: Two keys without a common tag: (almost surely) two slots.
SPREAD = ("x:conv:c1", "x:user:u1:convs")

LUA_TOUCHING_A_SECOND_KEY = """#!lua
redis.call('SET', KEYS[1], '1')
return redis.call('SET', ARGV[1], '1')
"""


@pytest.fixture
async def cluster(cluster_redis_url: str) -> AsyncIterator[Redis]:
    client = make_redis(cluster_redis_url)
    await client.flushall()
    try:
        yield client
    finally:
        await client.aclose()


async def test_keys_of_one_slot_work_and_keys_of_two_fail_with_crossslot(cluster: Redis) -> None:
    slots = [await cluster.execute_command("CLUSTER", "KEYSLOT", k) for k in (*TAGGED, *SPREAD)]  # type: ignore[no-untyped-call]
    assert slots[0] == slots[1] and slots[2] != slots[3]

    # A plain client, single-key commands, JSON: as on any Redis (db 0).
    await cluster.execute_command("JSON.SET", TAGGED[0], "$", json.dumps({"title": "t"}))  # type: ignore[no-untyped-call]
    assert await cluster.execute_command("JSON.GET", TAGGED[0], "$.title") == '["t"]'  # type: ignore[no-untyped-call]

    # Multi-key command
    await cluster.mset(dict.fromkeys(TAGGED, "1"))
    with pytest.raises(ClusterCrossSlotError):
        await cluster.mset(dict.fromkeys(SPREAD, "1"))

    # MULTI/EXEC: the whole transaction is refused, nothing is written.
    async with cluster.pipeline(transaction=True) as pipe:
        pipe.set(SPREAD[0], "2").zadd(SPREAD[1], {"c1": 1})
        with pytest.raises(ClusterCrossSlotError):
            await pipe.execute()
    assert await cluster.get(SPREAD[0]) is None

    # A pipeline without a transaction is only many commands: no check.
    async with cluster.pipeline(transaction=False) as pipe:
        assert await pipe.set(SPREAD[0], "3").zadd(SPREAD[1], {"c1": 1}).execute() == [True, 1]

    # Scripts: declared keys are checked before the script runs ...
    script = cluster.register_script("return redis.call('GET', KEYS[1])")
    with pytest.raises(ClusterCrossSlotError):
        await script(keys=list(SPREAD))
    # ... and a script with a shebang (or a function) may touch only keys of
    # the slot it was called for, declared or not.
    touch = cluster.register_script(LUA_TOUCHING_A_SECOND_KEY)
    await touch(keys=[TAGGED[0]], args=[TAGGED[1]])
    with pytest.raises(ResponseError, match="do not hash to the same slot"):
        await touch(keys=[SPREAD[0]], args=[SPREAD[1]])


async def test_a_script_without_shebang_is_not_checked_for_keys_it_did_not_declare(
    cluster: Redis,
) -> None:
    """Redis keeps old-style EVAL scripts working: the keys they touch without
    declaring them are not checked, so such a script passes here and could
    still break a real cluster (its keys on another node). Write scripts with
    ``#!lua`` first, so this fixture checks them."""
    old_style = cluster.register_script(LUA_TOUCHING_A_SECOND_KEY.removeprefix("#!lua\n"))
    assert await old_style(keys=[SPREAD[0]], args=[SPREAD[1]]) == "OK"


async def test_only_database_zero_exists(cluster_redis_url: str) -> None:
    client = make_redis(cluster_redis_url.removesuffix("/0") + "/1")
    try:
        with pytest.raises(ResponseError, match="SELECT is not allowed in cluster mode"):
            await client.ping()
    finally:
        await client.aclose()
