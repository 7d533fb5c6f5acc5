"""A paused worker cannot store a tool turn's reply after another worker
took the turn over (issue 15): the fence check and the reply's write are
one atomic step (``worker/tools/fence.py``), so a worker that passed every
earlier check and then paused (a GC pause, a slow moderation call, a
stopped VM) stores nothing, tells the client nothing and acknowledges
nothing when it wakes up."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from shared.conversation import Message
from shared.models_file import HFModel, ModelCatalog
from shared.store import ConversationStore
from shared.streams import TurnRequest
from tests.support.tool_servers import MCP_TOKEN, MCP_TOKEN_ENV, ToolServers, tool_servers
from tests.worker.helpers import KEYS, queue_turn, session_events, settings
from tests.worker.test_tools import upstream_requests
from worker.tools.checkpoint import Superseded
from worker.turn import ReceivedTurn, TurnRunner
from worker.worker import Worker


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ToolServers]:
    with tool_servers(tmp_path_factory.mktemp("tool-servers")) as running:
        yield running


def runner(redis: Redis, redis_url: str, model: HFModel, tools: Path) -> TurnRunner:
    return Worker(redis, settings(redis_url, tools=str(tools)), ModelCatalog([model])).runner


async def test_a_stale_owner_stores_nothing_after_a_takeover(
    redis: Redis,
    redis_url: str,
    servers: ToolServers,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(MCP_TOKEN_ENV, MCP_TOKEN)
    model = HFModel(
        id="tooly", backend="hf", base_url=f"{servers.upstream_url}/v1", model="m", auto_title=False
    )
    tools = servers.tools_file(tmp_path)
    turn = await queue_turn(redis, model, '[[steps: calc__add {"a":1,"b":2}]]')
    entry = (await redis.xrange(KEYS.prompts(model.pool)))[-1][0]

    old = runner(redis, redis_url, model, tools)
    paused, wake = asyncio.Event(), asyncio.Event()

    async def pause_after_the_loop(turn: TurnRequest, reply: Message) -> Message:
        # The old worker has run every step and passed the loop's own
        # fence check; it stops here, just before storing its reply.
        paused.set()
        await wake.wait()
        return reply.model_copy(update={"content": "stale reply"})

    monkeypatch.setattr(old.after, "moderate", pause_after_the_loop)
    stale = asyncio.create_task(old.run(ReceivedTurn(entry, model.pool, turn)))
    await asyncio.wait_for(paused.wait(), 60)

    # Meanwhile the turn is taken over (its worker looked dead) and answered.
    new = runner(redis, redis_url, model, tools)
    await new.run(ReceivedTurn(entry, model.pool, turn, 2, "taken over"))
    store = ConversationStore(redis, KEYS)
    answered = (await store.get_owned(turn.conversation_id, "u1")).messages[turn.turn_id]
    assert answered.content == "answer: 3"
    ends_before = [
        e for e in await session_events(redis, turn.session_id) if e["type"] == "stream_end"
    ]

    # The old worker wakes up: it is fenced off, and writes nothing at all.
    wake.set()
    with pytest.raises(Superseded):
        await asyncio.wait_for(stale, 60)
    stored: Any = (await store.get_owned(turn.conversation_id, "u1")).messages[turn.turn_id]
    assert stored.content == "answer: 3"
    assert stored == answered
    ends = [e for e in await session_events(redis, turn.session_id) if e["type"] == "stream_end"]
    assert ends == ends_before and len(ends) == 1


async def test_a_slow_delivery_does_not_answer_again_after_an_earlier_one_stored(
    redis: Redis,
    redis_url: str,
    servers: ToolServers,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The other order: a second delivery (the first looked dead) reads the
    conversation, no reply yet; the first, only slow, then stores its
    reply; the second must not generate and store another one over it
    (the chaos run saw two stream_ends of one turn with different
    replies): its claim sees the stored reply, and it re-sends that."""
    monkeypatch.setenv(MCP_TOKEN_ENV, MCP_TOKEN)
    model = HFModel(
        id="tooly", backend="hf", base_url=f"{servers.upstream_url}/v1", model="m", auto_title=False
    )
    tools = servers.tools_file(tmp_path)
    turn = await queue_turn(redis, model, '[[steps: calc__add {"a":2,"b":3}]]')
    entry = (await redis.xrange(KEYS.prompts(model.pool)))[-1][0]

    first = runner(redis, redis_url, model, tools)
    paused, wake = asyncio.Event(), asyncio.Event()
    moderate = first.after.moderate

    async def slow_before_storing(turn: TurnRequest, reply: Message) -> Message:
        paused.set()
        await wake.wait()
        return await moderate(turn, reply)

    monkeypatch.setattr(first.after, "moderate", slow_before_storing)
    slow = asyncio.create_task(first.run(ReceivedTurn(entry, model.pool, turn)))
    await asyncio.wait_for(paused.wait(), 60)

    second = runner(redis, redis_url, model, tools)
    read, go_on = asyncio.Event(), asyncio.Event()
    run_tools = second.tools.run

    async def after_reading(*args: Any, **kwargs: Any) -> Any:
        read.set()  # the branch is read: no reply stored yet
        await go_on.wait()
        return await run_tools(*args, **kwargs)

    monkeypatch.setattr(second.tools, "run", after_reading)
    taking_over = asyncio.create_task(
        second.run(ReceivedTurn(entry, model.pool, turn, 2, "taken over"))
    )
    await asyncio.wait_for(read.wait(), 60)
    wake.set()
    await asyncio.wait_for(slow, 60)  # the first stores its reply
    store = ConversationStore(redis, KEYS)
    stored = (await store.get_owned(turn.conversation_id, "u1")).messages[turn.turn_id]
    assert stored.content == "answer: 5"
    requests = len(upstream_requests(servers))

    go_on.set()
    await asyncio.wait_for(taking_over, 60)
    again = (await store.get_owned(turn.conversation_id, "u1")).messages[turn.turn_id]
    assert again == stored  # not generated and stored again
    assert len(upstream_requests(servers)) == requests  # no model call
    ends = [e for e in await session_events(redis, turn.session_id) if e["type"] == "stream_end"]
    assert len(ends) == 2 and ends[0]["message"] == ends[1]["message"]
