"""Redis stopped (SIGTERM) or killed (SIGKILL) and started again on the same
port and data directory (AOF everysec) while clients chat through two
gateways and two workers: no acknowledged user message is lost, every acknowledged turn gets
its one reply, ``/ready`` goes false and back to true, stop requests work
again, and no process of ours is restarted."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.redis_client import make_redis
from shared.streams import parse_stream_id
from tests.support.resuming import (
    KEYS,
    FrameRefused,
    ResumingClient,
    cancel_all,
    check_one_reply_per_turn,
    check_session_delivery,
)
from tests.support.stack import Stack, running_stack, scripted_models
from tidechat.local_redis import LocalRedis

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

MODELS = scripted_models(tokens_per_second=20, reply_tokens=30)
CLIENTS = 16


@dataclass
class Readiness:
    """``/ready`` of each gateway, polled throughout."""

    stack: Stack
    seen: list[list[tuple[float, int]]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        self.seen = [[] for _ in self.stack.gateways]
        async with httpx.AsyncClient(timeout=3) as http:
            while True:
                for i, rows in enumerate(self.seen):
                    try:
                        status = (await http.get(self.stack.gateway_url(i) + "/ready")).status_code
                    except httpx.HTTPError:
                        status = 0
                    rows.append((time.monotonic(), status))
                    self.changed.set()
                await asyncio.sleep(0.1)  # the poll's own pace

    async def wait_all(self, status: int, since: float, timeout: float = 60) -> float:
        """Until every gateway answered ``status`` after ``since``; returns when."""
        async with asyncio.timeout(timeout):
            while True:
                firsts = [
                    next((t for t, s in rows if t > since and s == status), None)
                    for rows in self.seen
                ]
                if self.seen and all(f is not None for f in firsts):
                    return max(f for f in firsts if f is not None)
                self.changed.clear()
                await self.changed.wait()


def acks_of(client: ResumingClient) -> list[dict[str, Any]]:
    return [f for f in client.frames if f["type"] == "user_message"]


async def stop_mid_reply(client: ResumingClient) -> dict[str, Any]:
    ack = await client.submit({"type": "message", "content": "stop me halfway"})
    turn_id = ack["turn_id"]
    await client.wait_for(lambda f: f["type"] == "stream_chunk" and f["turn_id"] == turn_id)
    await client.send({"type": "stop", "turn_id": turn_id})
    return await client.end_of(turn_id, timeout=30)


@pytest.mark.parametrize("how", ["stop", "kill"])
async def test_redis_restart_under_load_loses_no_acknowledged_message(
    aof_redis: LocalRedis, tmp_path: Path, how: str
) -> None:
    """``stop``: SIGTERM, Redis writes the AOF out and exits. ``kill``: SIGKILL,
    as a crash; with ``appendfsync everysec`` every acknowledged write is
    already in the AOF file (only a crash of the machine can lose the last
    second that was not fsynced yet)."""
    with running_stack(aof_redis.url, tmp_path, models=MODELS, workers=2, gateways=2) as stack:
        tokens = [stack.signup(f"restart{i}") for i in range(4)]

        def on_gateway(i: int) -> ResumingClient:
            url = stack.gateway_url(i % 2).replace("http://", "ws://") + "/ws"
            return ResumingClient.new(tokens[i % 4], lambda: url)

        chatty = [on_gateway(i) for i in range(CLIENTS)]
        # Connected and past their first frame, quiet until Redis is away.
        idle = [on_gateway(i) for i in range(4)]
        for client in idle:
            await client.connect()
            await client.send({"type": "ping"})
            await client.wait_for(lambda f: f["type"] == "pong")
        # Connected, its first frame comes while Redis is away.
        fresh = on_gateway(0)
        await fresh.connect()
        # Opens its socket while Redis is away.
        newcomer = on_gateway(1)
        everyone = [*chatty, *idle, fresh, newcomer]
        pids = [p.pid for p in stack.gateways + stack.workers]

        sending = True
        restarted_wall = float("inf")
        through = [asyncio.Event() for _ in chatty]
        refused_in_loop: list[str] = []
        just_acked = asyncio.Event()

        async def converse(client: ResumingClient, index: int) -> None:
            cid = None
            n = 0
            await client.connect()
            while sending:
                n += 1
                frame = {
                    "type": "message",
                    "content": f"msg {n} of {index}",
                    "conversation_id": cid,
                }
                try:
                    ack = await client.submit(frame, timeout=120)
                except FrameRefused as exc:
                    refused_in_loop.append(str(exc.frame["code"]))
                    await asyncio.sleep(0.3)  # a client's own retry pace
                    continue
                just_acked.set()
                cid = ack["conversation_id"]
                await client.end_of(ack["turn_id"], timeout=120)
                if parse_stream_id(ack["event_id"])[0] > restarted_wall * 1000:
                    through[index].set()

        async def connect_newcomer() -> float:
            await newcomer.connect(timeout=120)
            return time.monotonic()

        readiness = Readiness(stack)
        monitor = asyncio.create_task(readiness.run())
        talk = [asyncio.create_task(converse(c, i)) for i, c in enumerate(chatty)]
        try:
            await readiness.wait_all(200, 0)
            await asyncio.sleep(4)  # chatting under load
            just_acked.clear()
            await just_acked.wait()  # stop right after a message was acknowledged
            stopped, stopped_wall = time.monotonic(), time.time()
            await asyncio.to_thread(aof_redis.stop if how == "stop" else aof_redis.kill)
            unready = await readiness.wait_all(503, stopped)

            refusals = await asyncio.gather(*(c.submit_expecting_refusal() for c in idle))
            async with httpx.AsyncClient(base_url=stack.url, timeout=10) as http:
                headers = {"Authorization": f"Bearer {tokens[0]}"}
                away = await http.get("/api/conversations", headers=headers)
            first_refused = await fresh.submit_expecting_refusal(reconnect=False)
            await asyncio.wait_for(fresh.sock.closed.wait(), 10)
            newcomer_task = asyncio.create_task(connect_newcomer())
            await asyncio.sleep(2)  # Redis stays away a while

            await asyncio.to_thread(aof_redis.start)
            started, restarted_wall = time.monotonic(), time.time()
            ready = await readiness.wait_all(200, started, timeout=90)
            newcomer_at = await asyncio.wait_for(newcomer_task, 90)
            async with asyncio.timeout(120):
                await asyncio.gather(*(e.wait() for e in through))
            recovered = time.monotonic()
            for client in [*idle, newcomer]:
                ack = await client.submit({"type": "message", "content": "back again?"})
                await client.end_of(ack["turn_id"])
            # the workers' stop listeners are subscribed again: a stop lands mid-reply
            stops = await asyncio.gather(*(stop_mid_reply(c) for c in idle))
            sending = False
            await asyncio.gather(*talk)
        finally:
            await cancel_all([monitor, *talk])

        # the HTTP API says "try again shortly", not 500
        assert away.status_code == 503 and away.json()["error"]["code"] == "internal"
        assert away.headers["retry-after"] == "1"
        # sockets that had subscribed stayed open; a message was refused, not lost
        assert {r.frame["code"] for r in refusals} == {"internal"}
        assert all(c.reconnects == 0 for c in idle)
        # a first frame that cannot subscribe: refused, then "try again later"
        assert first_refused.frame["code"] == "internal"
        assert fresh.sockets[0].close_code == 1013
        assert [e["message"]["finish_reason"] for e in stops] == ["stopped"] * len(idle)
        # nothing of ours was restarted
        assert all(p.alive() for p in stack.gateways + stack.workers)
        assert [p.pid for p in stack.gateways + stack.workers] == pids

        redis = make_redis(aof_redis.url)
        try:
            for client in everyone:
                owner = client.sockets[0].frames[0]["user"]["id"]
                await check_session_delivery(redis, client)
                texts = await check_one_reply_per_turn(redis, client, owner)
                assert len(texts) == len(acks_of(client))
            takeovers = int(await redis.hget(KEYS.metrics("default"), "takeovers") or 0)
        finally:
            await redis.aclose()
        acked = [parse_stream_id(a["event_id"])[0] / 1000 for c in everyone for a in acks_of(c)]
        before = [t for t in acked if t < stopped_wall]
        print(
            f"\nredis {how} and restart: {len(acked)} acknowledged messages, all stored with their one "
            f"reply ({len(before)} acknowledged before the stop, "
            f"{sum(t > stopped_wall - 1 for t in before)} of them in its last second); "
            f"/ready false {unready - stopped:.1f}s after the stop and true again "
            f"{ready - started:.1f}s after the start; a socket opened "
            f"{newcomer_at - started:.1f}s after the start; every client through again "
            f"{recovered - started:.1f}s after the start ({takeovers} interrupted turns taken "
            f"over); {len(refusals) + 1 + len(refused_in_loop)} messages refused while Redis "
            f"was away; stops after the restart: {len(stops)}/{len(idle)} stopped"
        )
        assert before, "nothing was acknowledged before the stop"
        for client in everyone:
            await client.close()
