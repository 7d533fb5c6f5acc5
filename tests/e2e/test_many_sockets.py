"""One gateway, 300 sockets, turns in flight: its Redis connections stay few."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from redis.asyncio import Redis

from tests.e2e.conftest import unique
from tests.support.stack import Stack, running_stack, scripted_models
from tests.support.ws import ChatSocket

pytestmark = pytest.mark.e2e

SOCKETS = 300
POOL_SIZE = 16


@pytest.fixture(scope="module")
def busy_stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(
        redis_url,
        tmp_path_factory.mktemp("many"),
        models=scripted_models(tokens_per_second=20, reply_tokens=120),
        worker_args=("--concurrency", "160"),
        # 30 turns per user at once, all streaming together (fair lines are
        # tested in test_fair_turns.py).
        env={"TIDECHAT_REDIS_POOL_SIZE": str(POOL_SIZE), "TIDECHAT_FAIR_TURNS_PER_USER": "30"},
    ) as s:
        yield s


async def gateway_connections(redis: Redis) -> int:
    clients = await redis.client_list()
    return sum(1 for c in clients if str(c.get("name", "")).startswith("tidechat-gateway-"))


async def test_300_sockets_share_one_reader_and_a_bounded_pool(
    busy_stack: Stack, raw_redis: Redis
) -> None:
    tokens = [busy_stack.signup(unique("many")) for _ in range(10)]
    socks = await asyncio.gather(
        *(
            ChatSocket.connect(busy_stack.ws_url, tokens[i % 10], session=unique("s"))
            for i in range(SOCKETS)
        )
    )
    await asyncio.gather(*(s.wait_type("hello") for s in socks))
    await asyncio.gather(
        *(
            s.send({"type": "message", "content": f"question {i}", "client_id": str(i)})
            for i, s in enumerate(socks)
        )
    )
    starts = await asyncio.gather(*(s.wait_type("stream_start", timeout=60) for s in socks))
    # every turn is streaming right now
    await asyncio.gather(*(s.wait_type("stream_chunk", timeout=30) for s in socks))
    in_flight = await gateway_connections(raw_redis)
    print(f"\n{SOCKETS} sockets streaming: gateway holds {in_flight} Redis connections")
    assert in_flight <= POOL_SIZE + 1  # the command pool plus the one reader
    ends = await asyncio.gather(
        *(
            s.wait_type("stream_end", turn_id=st["turn_id"], timeout=60)
            for s, st in zip(socks, starts, strict=True)
        )
    )
    for sock, start, end in zip(socks, starts, ends, strict=True):
        assert sock.text_of(start["turn_id"]) == end["message"]["content"]
        assert end["message"]["content"].startswith("You said: question")
    await asyncio.gather(*(s.close() for s in socks))
