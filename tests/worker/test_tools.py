"""The tool loop in a worker against real Redis, a real MCP server (the
``mcp`` SDK's, over streamable HTTP, as a process) and an OpenAI-compatible
upstream that scripts streamed tool calls (issue 15, docs/tools.md)."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from shared.models_file import HFModel
from shared.store import ConversationStore
from shared.tool_approvals import Approvals
from shared.tools import ToolCall, ToolStep
from tests.support.tool_servers import MCP_TOKEN, MCP_TOKEN_ENV, ToolServers, tool_servers
from tests.worker.helpers import (
    KEYS,
    queue_turn,
    running_worker,
    session_events,
    settings,
    wait_event,
)
from worker.tools.checkpoint import Checkpoint

MCP_SERVER_SCRIPT = Path(__file__).resolve().parents[1] / "support" / "mcp_server.py"
ADD_TWICE_THEN_ONCE = (
    'What are these sums? [[steps: calc__add {"a":1,"b":2} ; calc__add {"a":3,"b":4}'
    ' | calc__add {"a":5,"b":6}]]'
)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ToolServers]:
    with tool_servers(tmp_path_factory.mktemp("tool-servers")) as running:
        yield running


@pytest.fixture
def model(servers: ToolServers) -> HFModel:
    return HFModel(
        id="tooly", backend="hf", base_url=f"{servers.upstream_url}/v1", model="m", auto_title=False
    )


@pytest.fixture
def tools_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MCP_TOKEN_ENV, MCP_TOKEN)


def upstream_requests(servers: ToolServers) -> list[dict[str, Any]]:
    return list(httpx.get(f"{servers.upstream_url}/requests", timeout=10).json())


async def run_turn(
    redis: Redis, redis_url: str, model: HFModel, tools: Path, content: str, **kw: Any
) -> tuple[Any, dict[str, Any], list[dict[str, Any]]]:
    cfg = settings(redis_url, tools=str(tools))
    async with running_worker(redis, cfg, [model]):
        turn = await queue_turn(redis, model, content, **kw)
        end = await wait_event(
            redis, turn.session_id, "stream_end", turn_id=turn.turn_id, timeout=60
        )
    return turn, end, await session_events(redis, turn.session_id)


@pytest.mark.usefixtures("tools_env")
async def test_two_steps_with_parallel_calls_are_run_stored_and_shown(
    redis: Redis, redis_url: str, servers: ToolServers, model: HFModel, tmp_path: Path
) -> None:
    before = await servers.counts()
    seen = len(upstream_requests(servers))
    turn, end, events = await run_turn(
        redis, redis_url, model, servers.tools_file(tmp_path), ADD_TWICE_THEN_ONCE
    )
    message = end["message"]
    assert message["finish_reason"] == "stop", message
    assert message["content"] == "answer: 3 / 7 / 11"
    steps = [ToolStep.model_validate(s) for s in message["steps"]]
    assert [[(c.tool, c.arguments, c.status, c.result) for c in s.calls] for s in steps] == [
        [("add", '{"a":1,"b":2}', "ok", "3"), ("add", '{"a":3,"b":4}', "ok", "7")],
        [("add", '{"a":5,"b":6}', "ok", "11")],
    ]
    # Each call ran once on the MCP server.
    assert (await servers.counts()).get("add", 0) - before.get("add", 0) == 3

    # The client saw each call and its result, between stream_start and stream_end.
    types = [e["type"] for e in events]
    assert types.count("tool_call") == 3 and types.count("tool_result") == 3
    assert types.index("stream_start") < types.index("tool_call") < types.index("stream_end")
    results = [e for e in events if e["type"] == "tool_result"]
    assert [(r["step"], r["status"], r["preview"]) for r in results][-1] == (1, "ok", "11")
    assert {e["server"] for e in events if e["type"] == "tool_call"} == {"calc"}

    # The stored reply has the steps; the model was offered the tools and
    # got the results back in OpenAI's tool-message form.
    conv = await ConversationStore(redis, KEYS).get_owned(turn.conversation_id, "u1")
    assert conv.messages[turn.turn_id].steps == steps
    requests = upstream_requests(servers)[seen:]
    assert len(requests) == 3
    offered = {t["function"]["name"] for t in requests[0]["tools"]}
    assert {"calc__add", "calc__slow", "calc__fail", "calc__counts"} <= offered
    second = requests[1]["messages"]
    assert second[-3]["tool_calls"][0]["function"] == {
        "name": "calc__add",
        "arguments": '{"a":1,"b":2}',
    }
    assert second[-2:] == [
        {"role": "tool", "tool_call_id": "call_0_0", "content": "3"},
        {"role": "tool", "tool_call_id": "call_0_1", "content": "7"},
    ]

    # The token stays on the worker: not in an event, the conversation, a checkpoint.
    dump = json.dumps(events) + json.dumps(conv.model_dump(mode="json"))
    for key in await redis.keys("*"):
        if await redis.type(key) == "hash":
            dump += json.dumps(await redis.hgetall(key))
    assert MCP_TOKEN not in dump and servers.mcp_url not in dump


@pytest.mark.usefixtures("tools_env")
async def test_failures_timeouts_and_unknown_tools_go_back_to_the_model(
    redis: Redis, redis_url: str, servers: ToolServers, model: HFModel, tmp_path: Path
) -> None:
    content = '[[steps: calc__fail {} ; calc__nope {} ; calc__slow {"seconds": 60} ; calc__add {"a": "x"}]]'
    # 5 s: long enough for the other calls on a loaded machine.
    tools = servers.tools_file(tmp_path, timeout=5)
    _, end, _ = await run_turn(redis, redis_url, model, tools, content)
    message = end["message"]
    assert message["finish_reason"] == "stop" and message["error"] is None
    calls = message["steps"][0]["calls"]
    assert [c["status"] for c in calls] == ["error", "error", "timeout", "error"]
    assert "no tool calc__nope" in calls[1]["result"]
    assert message["content"].startswith("answer: [error]")
    assert "[timeout] the tool took longer than 5 s" in message["content"]


@pytest.mark.usefixtures("tools_env")
async def test_the_step_limit_ends_the_turn_with_an_answer(
    redis: Redis, redis_url: str, servers: ToolServers, model: HFModel, tmp_path: Path
) -> None:
    path = tmp_path / "tools.toml"
    servers.tools_file(tmp_path)
    path.write_text("max_steps = 2\n" + path.read_text())
    seen = len(upstream_requests(servers))
    content = (
        '[[steps: calc__add {"a":1,"b":1} | calc__add {"a":2,"b":2} | calc__add {"a":3,"b":3}]]'
    )
    _, end, _ = await run_turn(redis, redis_url, model, path, content)
    assert len(end["message"]["steps"]) == 1
    assert end["message"]["content"] == "answer: 2"
    requests = upstream_requests(servers)[seen:]
    assert "tools" in requests[0] and requests[1].get("tools") is None


@pytest.mark.usefixtures("tools_env")
async def test_a_model_without_tools_in_the_file_gets_none(
    redis: Redis, redis_url: str, servers: ToolServers, model: HFModel, tmp_path: Path
) -> None:
    seen = len(upstream_requests(servers))
    tools = servers.tools_file(tmp_path, models='["someone-else"]')
    _, end, events = await run_turn(redis, redis_url, model, tools, ADD_TWICE_THEN_ONCE)
    assert end["message"]["steps"] is None and end["message"]["content"] == "answer: "
    assert "tool_call" not in {e["type"] for e in events}
    assert upstream_requests(servers)[seen].get("tools") is None


@pytest.mark.usefixtures("tools_env")
async def test_a_later_turn_sees_the_earlier_steps_as_tool_messages(
    redis: Redis, redis_url: str, servers: ToolServers, model: HFModel, tmp_path: Path
) -> None:
    tools = servers.tools_file(tmp_path)
    first, _, _ = await run_turn(redis, redis_url, model, tools, ADD_TWICE_THEN_ONCE)
    seen = len(upstream_requests(servers))
    await run_turn(
        redis,
        redis_url,
        model,
        tools,
        "and now?",
        conversation_id=first.conversation_id,
        parent_id=first.turn_id,
    )
    messages = upstream_requests(servers)[seen]["messages"]
    roles = [m["role"] for m in messages]
    assert roles == ["user", "assistant", "tool", "tool", "assistant", "tool", "assistant", "user"]
    assert messages[6]["content"] == "answer: 3 / 7 / 11"


@pytest.mark.usefixtures("tools_env")
async def test_a_taken_over_turn_continues_from_its_checkpoint(
    redis: Redis, redis_url: str, servers: ToolServers, model: HFModel, tmp_path: Path
) -> None:
    """A dead worker's record: step 0 asked for three calls; one finished,
    one was in flight (not idempotent), one never started. The next worker
    runs only the one never started, reports the in-flight one as
    interrupted, and the in-flight idempotent one of step 1 is run again."""
    before = await servers.counts()
    content = (
        '[[steps: calc__add {"a":1,"b":2} ; calc__add {"a":3,"b":4} ; calc__add {"a":5,"b":6}'
        ' | calc__slow {"seconds":0}]]'
    )
    cfg = settings(redis_url, tools=str(servers.tools_file(tmp_path)))
    turn = await queue_turn(redis, model, content)
    checkpoint = Checkpoint(redis, KEYS, turn.turn_id, turn.conversation_id)
    calls = [
        ToolCall(
            id=f"call_0_{i}", server="calc", tool="add", arguments=json.dumps({"a": a, "b": b})
        )
        for i, (a, b) in enumerate([(1, 2), (3, 4), (5, 6)])
    ]
    await checkpoint.save_step(0, ToolStep(text="", calls=calls))
    await checkpoint.start_call(0, "call_0_0")
    await checkpoint.finish_call(0, calls[0].model_copy(update={"status": "ok", "result": "3"}))
    await checkpoint.start_call(0, "call_0_1")  # in flight when the worker died
    slow = ToolCall(id="call_1_0", server="calc", tool="slow", arguments='{"seconds":0}')
    await checkpoint.save_step(1, ToolStep(calls=[slow]))
    await checkpoint.start_call(1, "call_1_0")  # idempotent: run again

    async with running_worker(redis, cfg, [model]):
        end = await wait_event(
            redis, turn.session_id, "stream_end", turn_id=turn.turn_id, timeout=60
        )
    message = end["message"]
    statuses = [[c["status"] for c in s["calls"]] for s in message["steps"]]
    assert statuses == [["ok", "interrupted", "ok"], ["ok"]]
    assert message["content"].startswith("answer: 3 / [interrupted]")
    after = await servers.counts()
    assert after.get("add", 0) - before.get("add", 0) == 1  # only the call never started
    assert after.get("slow", 0) - before.get("slow", 0) == 1
    # The client was shown the recorded steps again.
    events = await session_events(redis, turn.session_id)
    assert [e["call_id"] for e in events if e["type"] == "tool_call"] == [
        "call_0_0",
        "call_0_1",
        "call_0_2",
        "call_1_0",
    ]


@pytest.mark.usefixtures("tools_env")
async def test_stop_cancels_an_in_flight_call_on_the_server(
    redis: Redis, redis_url: str, servers: ToolServers, model: HFModel, tmp_path: Path
) -> None:
    path = servers.tools_file(tmp_path)
    before = await servers.counts()
    async with running_worker(redis, settings(redis_url, tools=str(path)), [model]):
        turn = await queue_turn(redis, model, '[[steps: calc__slow {"seconds":30}]]')
        await wait_event(redis, turn.session_id, "tool_call", turn_id=turn.turn_id, timeout=30)
        async with asyncio.timeout(30):  # the call reached the server
            while (await servers.counts()).get("slow", 0) == before.get("slow", 0):
                await asyncio.sleep(0.05)
        asked = time.monotonic()
        await redis.set(KEYS.cancel(turn.turn_id), "u1", ex=60)
        await redis.publish(KEYS.cancel_channel(), f"{turn.turn_id} u1")
        end = await wait_event(
            redis, turn.session_id, "stream_end", turn_id=turn.turn_id, timeout=30
        )
        took = time.monotonic() - asked
    assert took < 2
    message = end["message"]
    assert message["finish_reason"] == "stopped"
    assert [c["status"] for c in message["steps"][0]["calls"]] == ["stopped"]
    async with asyncio.timeout(10):  # the MCP server was told to cancel the call
        while (await servers.counts()).get("cancelled", 0) == before.get("cancelled", 0):
            await asyncio.sleep(0.05)
    assert (await servers.counts()).get("slow_done", 0) == before.get("slow_done", 0)


async def test_a_stdio_server(redis: Redis, redis_url: str, model: HFModel, tmp_path: Path) -> None:
    script = MCP_SERVER_SCRIPT
    path = tmp_path / "tools.toml"
    path.write_text(
        f"""
[[servers]]
id = "local"
transport = "stdio"
command = [{json.dumps(sys.executable)}, {json.dumps(str(script))}, "--stdio"]
models = ["tooly"]
"""
    )
    content = '[[steps: local__add {"a":20,"b":22} | local__counts {}]]'
    _, end, _ = await run_turn(redis, redis_url, model, path, content)
    assert end["message"]["content"] == 'answer: 42 / {"add": 1, "add:20:22": 1}'


@pytest.mark.usefixtures("tools_env")
@pytest.mark.parametrize(("approve", "status", "runs"), [(True, "ok", 1), (False, "denied", 0)])
async def test_an_ask_tool_waits_for_its_users_answer(
    redis: Redis,
    redis_url: str,
    servers: ToolServers,
    model: HFModel,
    tmp_path: Path,
    approve: bool,
    status: str,
    runs: int,
) -> None:
    tools = servers.tools_file(tmp_path, extra='ask = ["add"]')
    approvals = Approvals(redis, KEYS)
    before = await servers.counts()
    async with running_worker(redis, settings(redis_url, tools=str(tools)), [model]):
        turn = await queue_turn(redis, model, '[[steps: calc__add {"a":2,"b":2}]]')
        asked = await wait_event(
            redis, turn.session_id, "approval_required", turn_id=turn.turn_id, timeout=30
        )
        assert (asked["tool"], asked["arguments"], asked["timeout_seconds"]) == (
            "add",
            '{"a":2,"b":2}',
            300,
        )
        # Nothing runs before the answer; another user's answer is refused
        # as a call that does not exist is.
        assert not await approvals.record("u1", turn.turn_id, "no-such-call", True)
        assert not await approvals.record("mallory", turn.turn_id, asked["call_id"], True)
        assert (await servers.counts()).get("add", 0) == before.get("add", 0)
        assert await approvals.record("u1", turn.turn_id, asked["call_id"], approve)
        assert not await approvals.record("u1", turn.turn_id, asked["call_id"], not approve)
        end = await wait_event(
            redis, turn.session_id, "stream_end", turn_id=turn.turn_id, timeout=30
        )
    call = end["message"]["steps"][0]["calls"][0]
    assert call["status"] == status
    assert (await servers.counts()).get("add", 0) - before.get("add", 0) == runs
    expected = "answer: 4" if approve else "answer: [denied] the user denied this call"
    assert end["message"]["content"] == expected


@pytest.mark.usefixtures("tools_env")
async def test_an_unanswered_approval_times_out(
    redis: Redis, redis_url: str, servers: ToolServers, model: HFModel, tmp_path: Path
) -> None:
    tools = servers.tools_file(tmp_path, extra='ask = ["add"]')
    cfg = settings(redis_url, tools=str(tools), tool_approval_timeout_seconds=1)
    async with running_worker(redis, cfg, [model]):
        turn = await queue_turn(redis, model, '[[steps: calc__add {"a":2,"b":2}]]')
        end = await wait_event(
            redis, turn.session_id, "stream_end", turn_id=turn.turn_id, timeout=30
        )
    call = end["message"]["steps"][0]["calls"][0]
    assert call["status"] == "denied"
    assert call["result"] == "the user did not approve this call within 1 s"
