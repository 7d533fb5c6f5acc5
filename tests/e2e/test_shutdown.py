"""Graceful shutdown of real processes: SIGTERM to a worker drains its turns
or hands them back at once; SIGTERM to a gateway closes its sockets with
1001 "going away", and the clients resume elsewhere."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from tests.support.resuming import ResumingClient, check_one_reply_per_turn, check_session_delivery
from tests.support.stack import OPERATOR, Stack, running_stack, scripted_models

pytestmark = pytest.mark.e2e


async def live_workers(stack: Stack, count: int, timeout: float = 30) -> None:
    """Until ``/ready`` counts ``count`` live workers."""
    async with httpx.AsyncClient(base_url=stack.url, timeout=5, headers=OPERATOR) as http:
        async with asyncio.timeout(timeout):
            while True:
                body = (await http.get("/ready")).json()
                if body.get("pools", {}).get("default", {}).get("live_workers") == count:
                    return
                await asyncio.sleep(0.2)


async def exit_code(stack: Stack, index: int, timeout: float = 30) -> int:
    return await asyncio.wait_for(asyncio.to_thread(stack.workers[index].popen.wait), timeout)


async def started_reply(stack: Stack, session_url: str | None = None) -> tuple[ResumingClient, str]:
    token = stack.signup(f"bye{time.monotonic_ns()}")
    client = ResumingClient.new(token, lambda: session_url or stack.ws_url)
    await client.connect()
    ack = await client.submit({"type": "message", "content": "a long answer please"})
    turn_id = ack["turn_id"]
    await client.wait_for(lambda f: f["type"] == "stream_chunk" and f["turn_id"] == turn_id)
    return client, turn_id


async def test_a_worker_stopped_mid_reply_hands_it_back_at_once(
    raw_redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    slow = scripted_models(tokens_per_second=10, reply_tokens=100)  # 10 s
    with running_stack(
        redis_url, tmp_path, models=slow, workers=1, env={"TIDECHAT_DRAIN_TIMEOUT_SECONDS": "1"}
    ) as stack:
        client, turn_id = await started_reply(stack)
        stack.start_worker()
        await live_workers(stack, 2)
        stack.workers[0].signal(signal.SIGTERM)
        asked = time.monotonic()
        restart = await client.wait_for(
            lambda f: f["type"] == "stream_restart" and f["turn_id"] == turn_id, timeout=30
        )
        took = time.monotonic() - asked
        assert await exit_code(stack, 0) == 0
        end = await client.end_of(turn_id, timeout=60)
        owner = client.sockets[0].frames[0]["user"]["id"]
        texts = await check_one_reply_per_turn(raw_redis, client, owner)
        await check_session_delivery(raw_redis, client)
        print(f"\nworker SIGTERM: handed back and restarted elsewhere {took:.1f}s after the signal")
        # 1 s of drain, then at most a claim interval: far below the 10 s idle threshold
        assert took < 6
        assert "starting again" in restart["reason"]
        assert texts[turn_id] == end["message"]["content"]
        assert end["message"]["finish_reason"] == "stop"
        await client.close()


async def test_a_worker_stopped_mid_reply_finishes_it_first(
    raw_redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    short = scripted_models(tokens_per_second=20, reply_tokens=40)  # 2 s, drain allows 20 s
    with running_stack(redis_url, tmp_path, models=short, workers=1) as stack:
        client, turn_id = await started_reply(stack)
        stack.workers[0].signal(signal.SIGTERM)
        end = await client.end_of(turn_id, timeout=30)
        assert await exit_code(stack, 0) == 0
        assert end["message"]["finish_reason"] == "stop"
        assert not [f for f in client.frames if f["type"] == "stream_restart"]
        owner = client.sockets[0].frames[0]["user"]["id"]
        await check_one_reply_per_turn(raw_redis, client, owner)
        # stopped reading new turns: a message now waits for another worker
        ack = await client.submit({"type": "message", "content": "anyone?"})
        stack.start_worker()
        later = await client.end_of(ack["turn_id"], timeout=30)
        assert later["message"]["finish_reason"] == "stop"
        await client.close()


async def test_a_gateway_stopped_closes_its_sockets_with_going_away(
    raw_redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    slow = scripted_models(tokens_per_second=15, reply_tokens=60)
    with running_stack(redis_url, tmp_path, models=slow, workers=1, gateways=2) as stack:
        other = stack.gateway_url(1).replace("http://", "ws://") + "/ws"
        client, turn_id = await started_reply(stack)
        client.pick = lambda: other
        stack.gateways[0].signal(signal.SIGTERM)
        await asyncio.wait_for(client.sock.closed.wait(), 15)
        assert client.sock.close_code == 1001
        end = await client.end_of(turn_id, timeout=30)  # resumed on the other gateway
        assert client.urls[-1] == other
        # uvicorn re-raises the signal once shut down: the exit status says SIGTERM
        code = await asyncio.wait_for(asyncio.to_thread(stack.gateways[0].popen.wait), 15)
        assert code in (0, -signal.SIGTERM)
        owner = client.sockets[0].frames[0]["user"]["id"]
        texts = await check_one_reply_per_turn(raw_redis, client, owner)
        await check_session_delivery(raw_redis, client)
        assert texts[turn_id] == end["message"]["content"]
        await client.close()
