"""Tools end to end (issue 15): real gateway and worker processes, the
SDK's MCP server over streamable HTTP (bearer token) and a scripted
tool-calling upstream, as processes, on real Redis."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import unique
from tests.support.stack import Stack, running_stack
from tests.support.tool_servers import MCP_TOKEN, MCP_TOKEN_ENV, ToolServers, tool_servers
from tests.support.ws import ChatSocket

pytestmark = pytest.mark.e2e

ADD = (
    'Sum these [[steps: calc__add {"a":1,"b":2} ; calc__add {"a":3,"b":4}'
    ' | calc__add {"a":5,"b":6}]]'
)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ToolServers]:
    with tool_servers(tmp_path_factory.mktemp("tool-servers")) as running:
        yield running


@pytest.fixture(scope="module")
def stack(
    redis_url: str, servers: ToolServers, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    directory = tmp_path_factory.mktemp("tools-stack")
    env = {
        "TIDECHAT_TOOLS": str(servers.tools_file(directory, extra='ask = ["slow"]')),
        MCP_TOKEN_ENV: MCP_TOKEN,
    }
    # A model of a backend that cannot call tools, though the file offers
    # the server to every model ("*").
    models = servers.models_file_entry() + '[[models]]\nid = "plain"\nbackend = "scripted"\n'
    with running_stack(redis_url, directory, models=models, workers=1, gateways=2, env=env) as s:
        yield s


def test_the_model_list_says_which_models_have_tools(stack: Stack) -> None:
    with stack.client(stack.signup(unique("picker"))) as http:
        answer = http.get("/api/models")
    assert answer.status_code == 200
    tools = {m["id"]: m["tools"] for m in answer.json()["models"]}
    assert tools == {"tooly": ["calc"], "plain": []}
    # The server's id only: never its address or token.
    assert MCP_TOKEN not in answer.text and "/mcp" not in answer.text


async def test_a_tool_turn_reaches_the_client_history_and_export(
    stack: Stack, servers: ToolServers
) -> None:
    before = await servers.counts()
    token = stack.signup(unique("tools"))
    sock = await ChatSocket.connect(stack.ws_url, token)
    await sock.send({"type": "message", "content": ADD, "model": "tooly"})
    end = await sock.wait_type("stream_end", timeout=60)
    await sock.close()
    turn_id = end["turn_id"]
    assert end["message"]["content"] == "answer: 3 / 7 / 11"
    assert sock.text_of(turn_id) == "answer: 3 / 7 / 11"

    # Every call and result reached the client, in order, before stream_end.
    mine = [f for f in sock.frames if f.get("turn_id") == turn_id]
    calls = [f for f in mine if f["type"] == "tool_call"]
    results = [f for f in mine if f["type"] == "tool_result"]
    assert [(c["step"], c["tool"], c["arguments"]) for c in calls] == [
        (0, "add", '{"a":1,"b":2}'),
        (0, "add", '{"a":3,"b":4}'),
        (1, "add", '{"a":5,"b":6}'),
    ]
    assert sorted(r["preview"] for r in results) == ["11", "3", "7"]
    assert all(r["status"] == "ok" and r["duration_ms"] >= 0 for r in results)
    assert all(f.get("event_id") for f in calls + results)
    assert (await servers.counts()).get("add", 0) - before.get("add", 0) == 3

    # The history and both exports show the steps.
    with stack.client(token) as http:
        cid = end["conversation_id"]
        stored = http.get(f"/api/conversations/{cid}").json()["messages"][turn_id]
        exported = http.get(f"/api/conversations/{cid}/export?format=json").json()
        markdown = http.get(f"/api/conversations/{cid}/export?format=markdown").text
    assert [len(s["calls"]) for s in stored["steps"]] == [2, 1]
    assert stored["steps"][1]["calls"][0]["result"] == "11"
    assert exported["messages"][turn_id]["steps"] == stored["steps"]
    assert '- tool `calc/add` `{"a":5,"b":6}` → ok: 11' in markdown

    # The MCP server's token and address never left the worker.
    seen = json.dumps(sock.frames) + json.dumps(stored) + markdown + stack.logs()
    for proc in stack.gateways + stack.workers:
        seen += proc.log.read_text(errors="replace")
    assert MCP_TOKEN not in seen
    assert servers.mcp_url not in json.dumps(sock.frames) + json.dumps(stored)


async def test_an_approval_survives_a_reconnect_to_the_other_gateway(
    stack: Stack, servers: ToolServers
) -> None:
    token = stack.signup(unique("approver"))
    session = unique("sess").replace(".", "-")[:40]
    first = await ChatSocket.connect(stack.ws_url, token, session)
    await first.send(
        {"type": "message", "content": '[[steps: calc__slow {"seconds":0}]]', "model": "tooly"}
    )
    posted = await first.wait_type("user_message", timeout=30)
    asked = await first.wait_type("approval_required", timeout=60)
    await first.close()

    # The tab comes back through the other gateway and resumes: the pending
    # approval is shown again, and answering it there runs the call.
    other = stack.gateway_url(1).replace("http://", "ws://") + "/ws"
    second = await ChatSocket.connect(other, token, session)
    await second.send({"type": "resume", "after": posted["event_id"]})
    again = await second.wait_type("approval_required", timeout=30)
    assert (again["call_id"], again["tool"]) == (asked["call_id"], "slow")
    await second.send(
        {
            "type": "approve",
            "turn_id": asked["turn_id"],
            "call_id": asked["call_id"],
            "approve": True,
        }
    )
    end = await second.wait_type("stream_end", timeout=60)
    assert end["message"]["content"] == "answer: slept"
    assert end["message"]["steps"][0]["calls"][0]["status"] == "ok"

    # Answering again, or a call nobody waits for: refused, the socket stays.
    await second.send(
        {
            "type": "approve",
            "turn_id": asked["turn_id"],
            "call_id": asked["call_id"],
            "approve": False,
        }
    )
    refused = await second.wait_type("error", timeout=15)
    assert refused["code"] == "not_found"
    await second.close()


def test_an_approval_over_http_for_a_turn_streamed_as_sse(
    stack: Stack, servers: ToolServers
) -> None:
    """``POST /api/chat`` streams ``approval_required``; the answer goes to
    ``POST /api/turns/{turn_id}/approvals/{call_id}``: another user's is
    refused as a call that does not exist is, a cross-site page's (with the
    session cookie) is refused as a forgery, the owner's runs the call."""
    before = asyncio.run(servers.counts())
    token = stack.signup(unique("sse-approver"))
    mallory = stack.signup(unique("mallory"))
    content = '[[steps: calc__slow {"seconds":0}]]'
    events: list[dict[str, Any]] = []
    with (
        stack.client(token) as http,
        http.stream("POST", "/api/chat", json={"content": content, "model": "tooly"}) as r,
    ):
        assert r.status_code == 200
        lines = r.iter_lines()
        for line in lines:
            if line.startswith("data: "):
                events.append(json.loads(line.removeprefix("data: ")))
                if events[-1]["type"] == "approval_required":
                    break
        asked = events[-1]
        assert (asked["type"], asked["tool"]) == ("approval_required", "slow")
        path = f"/api/turns/{asked['turn_id']}/approvals/{asked['call_id']}"
        nothing = f"/api/turns/{asked['turn_id']}/approvals/no-such-call"

        # Another user: the same 404 as for a call that does not exist.
        with stack.client(mallory) as other:
            theirs = other.post(path, json={"approve": True})
            missing = other.post(nothing, json={"approve": True})
        assert theirs.status_code == missing.status_code == 404
        assert theirs.json() == missing.json()
        # A page of another site, riding on the session cookie: refused.
        forged = httpx.post(
            stack.url + path,
            json={"approve": True},
            cookies={"tc_session": token},
            headers={"Origin": "https://evil.example"},
        )
        assert forged.status_code == 403
        assert asyncio.run(servers.counts()).get("slow", 0) == before.get("slow", 0)

        # The owner allows it: the call runs and the stream goes on to its end.
        assert http.post(path, json={"approve": True}).status_code == 204
        for line in lines:
            if line.startswith("data: "):
                events.append(json.loads(line.removeprefix("data: ")))
    assert events[-1]["type"] == "stream_end"
    assert events[-1]["message"]["content"] == "answer: slept"
    assert events[-1]["message"]["steps"][0]["calls"][0]["status"] == "ok"
    assert asyncio.run(servers.counts()).get("slow", 0) - before.get("slow", 0) == 1
    # The first answer counts: a second one finds nothing waiting.
    with stack.client(token) as http:
        again = http.post(path, json={"approve": False})
    assert again.status_code == 404
    assert again.json()["error"]["code"] == "not_found"
