"""A paused worker cannot store a tool turn's reply after another worker
took the turn over (issue 15): the fence check and the reply's write are
one atomic step (``worker/tools/fence.py``), so a worker that passed every
earlier check and then paused (a GC pause, a slow moderation call, a
stopped VM) stores nothing, tells the client nothing and acknowledges
nothing when it wakes up."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass
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
from worker.turn import ReceivedTurn, TurnRunner
from worker.worker import Worker


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ToolServers]:
    with tool_servers(tmp_path_factory.mktemp("tool-servers")) as running:
        yield running


@dataclass
class Setup:
    """One queued tool turn, and how to make runners (deliveries) for it."""

    redis: Redis
    redis_url: str
    model: HFModel
    tools: Path
    turn: TurnRequest
    entry: str

    def runner(self) -> TurnRunner:
        cfg = settings(self.redis_url, tools=str(self.tools))
        return Worker(self.redis, cfg, ModelCatalog([self.model])).runner

    def delivery(self, n: int = 1) -> ReceivedTurn:
        return ReceivedTurn(
            self.model.pool,
            self.entry,
            self.turn,
            deliveries=n,
            restart_reason="taken over" if n > 1 else None,
        )


@pytest.fixture(autouse=True)
def tools_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MCP_TOKEN_ENV, MCP_TOKEN)


def pause_before_storing(
    monkeypatch: pytest.MonkeyPatch, runner: TurnRunner, *, change_to: str | None = None
) -> tuple[asyncio.Event, asyncio.Event]:
    """The runner stops once its reply is made (every step run, the loop's
    own fence check passed), just before storing it, until woken; its reply
    then says ``change_to`` if given. (paused, wake)"""
    paused, wake = asyncio.Event(), asyncio.Event()
    moderate = runner.after.moderate

    async def paused_moderation(turn: TurnRequest, reply: Message) -> Message:
        paused.set()
        await wake.wait()
        reply = await moderate(turn, reply)
        return reply if change_to is None else reply.model_copy(update={"content": change_to})

    monkeypatch.setattr(runner.after, "moderate", paused_moderation)
    return paused, wake


async def queue_tool_turn(
    redis: Redis, redis_url: str, servers: ToolServers, tmp_path: Path, content: str
) -> Setup:
    model = HFModel(
        id="tooly", backend="hf", base_url=f"{servers.upstream_url}/v1", model="m", auto_title=False
    )
    turn = await queue_turn(redis, model, content)
    entry = (await redis.xrange(KEYS.prompts(model.pool)))[-1][0]
    return Setup(redis, redis_url, model, servers.tools_file(tmp_path), turn, entry)


async def test_a_stale_owner_stores_nothing_after_a_takeover(
    redis: Redis,
    redis_url: str,
    servers: ToolServers,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    setup = await queue_tool_turn(
        redis, redis_url, servers, tmp_path, '[[steps: calc__add {"a":1,"b":2}]]'
    )
    turn = setup.turn
    old = setup.runner()
    paused, wake = pause_before_storing(monkeypatch, old, change_to="stale reply")
    stale = asyncio.create_task(old.run(setup.delivery()))
    await asyncio.wait_for(paused.wait(), 60)

    # Meanwhile the turn is taken over (its worker looked dead) and answered.
    await setup.runner().run(setup.delivery(2))
    store = ConversationStore(redis, KEYS)
    answered = (await store.get_owned(turn.conversation_id, "u1")).messages[turn.turn_id]
    assert answered.content == "answer: 3"
    ends_before = [
        e for e in await session_events(redis, turn.session_id) if e["type"] == "stream_end"
    ]

    # The old worker wakes up: it is fenced off, and writes nothing at all.
    wake.set()
    with caplog.at_level(logging.INFO, "worker.turn"):
        await asyncio.wait_for(stale, 60)
    assert "taken over by another worker; this one stops" in caplog.text
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
    setup = await queue_tool_turn(
        redis, redis_url, servers, tmp_path, '[[steps: calc__add {"a":2,"b":3}]]'
    )
    turn = setup.turn
    first = setup.runner()
    paused, wake = pause_before_storing(monkeypatch, first)
    slow = asyncio.create_task(first.run(setup.delivery()))
    await asyncio.wait_for(paused.wait(), 60)

    second = setup.runner()
    read, go_on = asyncio.Event(), asyncio.Event()
    run_tools = second.tools.run

    async def after_reading(*args: Any, **kwargs: Any) -> Any:
        read.set()  # the branch is read: no reply stored yet
        await go_on.wait()
        return await run_tools(*args, **kwargs)

    monkeypatch.setattr(second.tools, "run", after_reading)
    taking_over = asyncio.create_task(second.run(setup.delivery(2)))
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
