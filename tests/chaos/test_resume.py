"""Sockets cut at random points, and a gateway killed mid-reply: the client
reconnects (to the same gateway or another), resumes after the last event
it saw, and ends with exactly the stored reply, every chunk once."""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from redis.asyncio import Redis

from tests.support.resuming import (
    ResumingClient,
    cancel_all,
    check_one_reply_per_turn,
    check_session_delivery,
    stored_conversation,
)
from tests.support.stack import Stack, running_stack, scripted_models

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

#: ~2 s a reply, in ~40 chunks: a cut lands anywhere in it.
MODELS = scripted_models(tokens_per_second=20, reply_tokens=40)


def picker(stack: Stack, start: int, hop: bool) -> Callable[[], str]:
    """Connect to gateway ``start`` first; then, with ``hop``, to the other one
    each time, else to the same one."""
    at = [start]

    def pick() -> str:
        url = stack.gateway_url(at[0]).replace("http://", "ws://") + "/ws"
        if hop:
            at[0] = 1 - at[0]
        return url

    return pick


async def cut_now_and_then(client: ResumingClient, rng: random.Random, cuts: list[int]) -> None:
    while True:
        await asyncio.sleep(rng.uniform(0.1, 1.2))  # the chaos's own pace
        if client.sockets and not client.sock.closed.is_set():
            client.cut()
            cuts.append(1)


async def test_cut_sockets_resume_on_any_gateway_with_every_chunk_once(
    raw_redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    clients_n, turns = 24, 3
    with running_stack(redis_url, tmp_path, models=MODELS, workers=2, gateways=2) as stack:
        tokens = [stack.signup(f"cut{i}") for i in range(4)]
        clients = [
            ResumingClient.new(tokens[i % 4], picker(stack, i % 2, hop=i % 4 < 2))
            for i in range(clients_n)
        ]
        cuts: list[int] = []

        async def converse(client: ResumingClient, index: int) -> None:
            await client.connect()
            cutter = asyncio.create_task(cut_now_and_then(client, random.Random(index), cuts))
            try:
                cid = None
                for i in range(turns):
                    ack = await client.submit(
                        {
                            "type": "message",
                            "content": f"cut {i} of {index}",
                            "conversation_id": cid,
                        }
                    )
                    cid = ack["conversation_id"]
                    await client.end_of(ack["turn_id"])
            finally:
                await cancel_all([cutter])

        began = time.monotonic()
        await asyncio.gather(*(converse(c, i) for i, c in enumerate(clients)))
        took = time.monotonic() - began

        events = 0
        for client in clients:
            owner = client.sockets[0].frames[0]["user"]["id"]
            events += await check_session_delivery(raw_redis, client)
            texts = await check_one_reply_per_turn(raw_redis, client, owner)
            assert len(texts) == turns
            cid = next(f["conversation_id"] for f in client.frames if f["type"] == "stream_end")
            conv = await stored_conversation(raw_redis, cid, owner)
            # a message resent after a cut was acted on once
            assert sum(m.role == "user" for m in conv.messages.values()) == turns
        reconnects = sum(c.reconnects for c in clients)
        hopped = sum(c.reconnects for i, c in enumerate(clients) if i % 4 < 2)
        print(
            f"\nsocket cuts: {clients_n * turns} turns in {took:.1f}s; {len(cuts)} cuts, "
            f"{reconnects} resumes ({hopped} on the other gateway); {events} events "
            "delivered, none lost or twice"
        )
        assert reconnects >= clients_n and hopped >= clients_n // 2
        for client in clients:
            await client.close()


async def test_a_gateway_killed_mid_reply_the_reply_arrives_through_another(
    raw_redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    slow = scripted_models(tokens_per_second=15, reply_tokens=90)
    # Eight replies in flight at once from two accounts: each gets a share of
    # four, so none waits in its line (the kill must land mid-reply).
    env = {"TIDECHAT_FAIR_TURNS_PER_USER": "4"}
    with running_stack(redis_url, tmp_path, models=slow, workers=2, gateways=2, env=env) as stack:
        tokens = [stack.signup(f"gwkill{i}") for i in range(2)]
        clients = [ResumingClient.new(tokens[i % 2], picker(stack, 0, hop=True)) for i in range(8)]
        acks = []
        for i, client in enumerate(clients):
            await client.connect()
            acks.append(await client.submit({"type": "message", "content": f"long story {i}"}))
        for client, ack in zip(clients, acks, strict=True):
            turn_id = ack["turn_id"]
            await client.wait_for(
                lambda f, c=client, t=turn_id: (
                    f["type"] == "stream_chunk" and len(c.streamed_text_of(t).split()) >= 5
                )
            )
        stack.gateways[0].signal(signal.SIGKILL)
        killed = time.monotonic()
        partial = [
            len(c.streamed_text_of(a["turn_id"])) for c, a in zip(clients, acks, strict=True)
        ]

        ends = await asyncio.gather(
            *(c.end_of(a["turn_id"], timeout=60) for c, a in zip(clients, acks, strict=True))
        )
        took = time.monotonic() - killed
        for client, ack, end in zip(clients, acks, ends, strict=True):
            owner = client.sockets[0].frames[0]["user"]["id"]
            assert client.reconnects == 1
            assert f":{stack.ports[1]}/" in client.urls[-1]
            await check_session_delivery(raw_redis, client)
            texts = await check_one_reply_per_turn(raw_redis, client, owner)
            assert texts[ack["turn_id"]] == end["message"]["content"]
            assert end["message"]["finish_reason"] == "stop"
        print(
            f"\ngateway SIGKILL: {len(clients)} replies cut at {min(partial)}-{max(partial)} "
            f"characters, all completed through the second gateway {took:.1f}s after the kill"
        )
        assert all(p > 0 for p in partial)
        for client in clients:
            await client.close()
