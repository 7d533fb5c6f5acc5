"""A poison turn: one the backend always fails on, or one that kills every
worker process taking it. It is dead-lettered past the limit, the user gets
an ``error`` (and keeps the message they typed), and every other turn is
served as usual."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from shared.keys import WORKER_GROUP
from tests.support.resuming import (
    KEYS,
    ResumingClient,
    cancel_all,
    check_one_reply_per_turn,
    check_session_delivery,
    stored_conversation,
)
from tests.support.stack import Stack, running_stack, scripted_models

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

GOOD_CLIENTS = 6
GOOD_TURNS = 10


async def good_traffic(stack: Stack, token: str, clients: list[ResumingClient]) -> None:
    async def converse(client: ResumingClient, index: int) -> None:
        await client.connect()
        cid = None
        for i in range(GOOD_TURNS):
            frame = {"type": "message", "content": f"fine {i} of {index}", "conversation_id": cid}
            ack = await client.submit(frame)
            cid = ack["conversation_id"]
            await client.end_of(ack["turn_id"], timeout=120)

    await asyncio.gather(*(converse(c, i) for i, c in enumerate(clients)))


async def poison_outcome(
    redis: Redis, client: ResumingClient, owner: str
) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    await client.connect()
    ack = await client.submit({"type": "message", "content": "POISON pill"})
    turn_id = ack["turn_id"]
    error = await client.wait_for(
        lambda f: f["type"] == "error" and f.get("turn_id") == turn_id, timeout=150
    )
    end = await client.end_of(turn_id)
    dead = [json.loads(fields["d"]) for _, fields in await redis.xrange(KEYS.dead("default"))]
    conv = await stored_conversation(redis, ack["conversation_id"], owner)
    assert conv.messages[ack["message"]["id"]].content == "POISON pill"  # what they typed is kept
    assert conv.messages[turn_id].finish_reason == "error"
    assert [d["turn"]["turn_id"] for d in dead] == [turn_id]
    return error, end, dead


async def check_good(redis: Redis, clients: list[ResumingClient]) -> int:
    turns = 0
    for client in clients:
        owner = client.sockets[0].frames[0]["user"]["id"]
        await check_session_delivery(redis, client)
        texts = await check_one_reply_per_turn(redis, client, owner)
        assert len(texts) == GOOD_TURNS
        assert all(t.startswith("You said: fine") for t in texts.values())
        assert not [f for f in client.frames if f["type"] == "error"]
        turns += len(texts)
    return turns


async def test_a_turn_the_backend_always_fails_is_dead_lettered(
    raw_redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    models = scripted_models(
        tokens_per_second=20, reply_tokens=20, fail_on="POISON", fail_status=503
    )
    env = {"TIDECHAT_BACKEND_RETRIES": "2", "TIDECHAT_RETRY_BASE_SECONDS": "0.2"}
    with running_stack(redis_url, tmp_path, models=models, workers=2, env=env) as stack:
        token = stack.signup("poisoned")
        with stack.client(token) as http:
            owner = http.get("/api/auth/me").json()["id"]
        good = [ResumingClient.new(token, lambda: stack.ws_url) for _ in range(GOOD_CLIENTS)]
        bad = ResumingClient.new(token, lambda: stack.ws_url)
        traffic = asyncio.create_task(good_traffic(stack, token, good))
        error, end, dead = await poison_outcome(raw_redis, bad, owner)
        await traffic
        turns = await check_good(raw_redis, good)
        assert error["code"] == "backend_unavailable"
        assert end["message"]["finish_reason"] == "error"
        assert dead[0]["deliveries"] == 1  # retried within the delivery, then given up
        assert (await raw_redis.xpending(KEYS.prompts("default"), WORKER_GROUP))["pending"] == 0
        print(
            f"\npoison (backend 503): dead-lettered after 1 + 2 in-turn retries with "
            f"{error['code']!r}; {turns} other turns served meanwhile, none failed"
        )
        for client in [*good, bad]:
            await client.close()


async def test_a_turn_that_kills_its_worker_is_dead_lettered_after_the_delivery_limit(
    raw_redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    # fail_status -1: the worker process dies on the spot (os._exit), as on
    # a native crash; the test restarts dead workers, as a supervisor would.
    models = scripted_models(
        tokens_per_second=20, reply_tokens=20, fail_on="POISON", fail_status=-1
    )
    env = {
        "TIDECHAT_MAX_DELIVERIES": "3",
        # Fast takeovers for the test; still above the 2 s heartbeat.
        "TIDECHAT_CLAIM_IDLE_SECONDS": "4",
        "TIDECHAT_CLAIM_INTERVAL_SECONDS": "0.5",
    }
    with running_stack(redis_url, tmp_path, models=models, workers=3, env=env) as stack:
        token = stack.signup("crasher")
        with stack.client(token) as http:
            owner = http.get("/api/auth/me").json()["id"]
        crashes: list[int] = []

        async def supervise() -> None:
            while True:
                for proc in list(stack.workers):
                    if not proc.alive() and proc.pid not in crashes:
                        crashes.append(proc.pid)
                        stack.start_worker()
                await asyncio.sleep(0.2)  # a supervisor's own pace

        supervisor = asyncio.create_task(supervise())
        began = time.monotonic()
        try:
            good = [ResumingClient.new(token, lambda: stack.ws_url) for _ in range(GOOD_CLIENTS)]
            bad = ResumingClient.new(token, lambda: stack.ws_url)
            traffic = asyncio.create_task(good_traffic(stack, token, good))
            error, end, dead = await poison_outcome(raw_redis, bad, owner)
            took = time.monotonic() - began
            await traffic
        finally:
            await cancel_all([supervisor])
        turns = await check_good(raw_redis, good)
        assert error["code"] == "internal"
        assert end["message"]["finish_reason"] == "error"
        assert dead[0]["deliveries"] == 4  # three crashes, then set aside
        assert len(crashes) == 3
        restarted = sum(1 for c in good for f in c.frames if f["type"] == "stream_restart")
        print(
            f"\npoison (worker crash): {len(crashes)} worker processes died on it, then "
            f"dead-lettered ({error['message']!r}) {took:.1f}s after it was sent; {turns} "
            f"other turns served meanwhile ({restarted} of them restarted by a takeover), none "
            "failed"
        )
        for client in [*good, bad]:
            await client.close()
