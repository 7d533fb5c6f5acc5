"""What Redis keeps, end to end: session streams expire a configurable time
after last use (and come back when a tab returns after that), prompt streams
are trimmed behind the workers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from redis.asyncio import Redis

from shared.keys import WORKER_GROUP
from tests.e2e.conftest import unique
from tests.support.resuming import KEYS, ResumingClient
from tests.support.stack import SCRIPTED_FAST, Stack, running_stack

pytestmark = pytest.mark.e2e

TTL = 120


@pytest.fixture(scope="module")
def kept(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {"TIDECHAT_SESSION_TTL_SECONDS": str(TTL), "TIDECHAT_TRIM_INTERVAL_SECONDS": "0.5"}
    with running_stack(
        redis_url, tmp_path_factory.mktemp("kept"), models=SCRIPTED_FAST, env=env
    ) as stack:
        yield stack


async def chat(client: ResumingClient, content: str, cid: str | None = None) -> dict[str, object]:
    ack = await client.submit({"type": "message", "content": content, "conversation_id": cid})
    return await client.end_of(ack["turn_id"])


async def test_a_session_stream_expires_the_configured_time_after_last_use(
    kept: Stack, raw_redis: Redis
) -> None:
    client = ResumingClient.new(kept.signup(unique("ttl")), lambda: kept.ws_url)
    await client.connect()
    await chat(client, "how long do you keep this?")
    ttl = await raw_redis.ttl(KEYS.session(client.session))
    assert 0 < ttl <= TTL
    await client.close()


async def test_a_tab_back_after_its_session_expired_gets_its_regenerated_reply(
    kept: Stack, raw_redis: Redis
) -> None:
    token = kept.signup(unique("back"))
    first = ResumingClient.new(token, lambda: kept.ws_url)
    await first.connect()
    end = await chat(first, "remember me?")
    await first.close()
    # a new tab (a session with no stream yet), and the same tab after its
    # stream expired: a regeneration is their first turn
    for client in [
        ResumingClient.new(token, lambda: kept.ws_url),
        ResumingClient(token, first.session, lambda: kept.ws_url),
    ]:
        await raw_redis.delete(KEYS.session(client.session))
        await client.connect()
        await client.send(
            {
                "type": "regenerate",
                "conversation_id": end["conversation_id"],
                "message_id": end["turn_id"],
            }
        )
        again = await client.wait_for(lambda f: f["type"] == "stream_end", timeout=30)
        assert again["message"]["content"].startswith("You said: remember me?")
        assert 0 < await raw_redis.ttl(KEYS.session(client.session)) <= TTL
        # and the socket keeps working after it
        await chat(client, "and now?", str(end["conversation_id"]))
        await client.close()


async def test_the_prompt_stream_is_trimmed_behind_the_workers(
    kept: Stack, raw_redis: Redis
) -> None:
    token = kept.signup(unique("trim"))
    clients = [ResumingClient.new(token, lambda: kept.ws_url) for _ in range(3)]

    async def talk(client: ResumingClient) -> None:
        await client.connect()
        for i in range(60):
            await chat(client, f"turn {i}")

    await asyncio.gather(*(talk(c) for c in clients))
    prompts = KEYS.prompts("default")
    async with asyncio.timeout(15):
        while await raw_redis.xlen(prompts) >= 100:  # MINID ~ trims whole 100-entry nodes
            await asyncio.sleep(0.1)
    assert (await raw_redis.xpending(prompts, WORKER_GROUP))["pending"] == 0
    for client in clients:
        await client.close()
