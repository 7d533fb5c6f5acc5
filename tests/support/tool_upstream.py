"""An OpenAI-compatible upstream that scripts tool calls, for the tool loop's
tests (the worker's ``hf`` backend talks to it by ``base_url``).

The last user message carries the script::

    [[steps: calc__add {"a":1,"b":2} ; calc__add {"a":3,"b":4} | calc__slow {"seconds":3}]]

Steps are separated by ``|``, the parallel calls of one step by ``;``, each
``<function name> <JSON arguments>``. The request's step is the number of
assistant messages with ``tool_calls`` after that user message: while steps
are left, the reply is that step's calls (streamed, each call's arguments in
two pieces, ``finish_reason`` "tool_calls"); after the last, a text answer
``answer: <the tool results, joined by " / ">``. ``[[pause:S]]``: every
request after the first step waits S seconds before answering (chaos tests
kill a worker in that gap). Requests are recorded: ``GET /requests`` lists
their bodies.

    python -m tests.support.tool_upstream --port 8099
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

REQUESTS: list[dict[str, Any]] = []

_STEPS = re.compile(r"\[\[steps:(.*?)\]\]", re.S)
_PAUSE = re.compile(r"\[\[pause:([0-9.]+)\]\]")


def plan(text: str) -> list[list[tuple[str, str]]]:
    found = _STEPS.search(text)
    if not found:
        return []
    steps = []
    for step in found.group(1).split("|"):
        calls = []
        for call in step.split(";"):
            name, _, args = call.strip().partition(" ")
            if name:
                calls.append((name, args.strip() or "{}"))
        steps.append(calls)
    return steps


def _after_last_user(messages: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].get("role") == "user":
            return str(messages[i].get("content") or ""), messages[i + 1 :]
    return "", messages


def _chunk(body: dict[str, Any], delta: dict[str, Any], finish: str | None = None) -> bytes:
    payload = {
        "id": "chatcmpl-tools",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": body.get("model") or "tools",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(payload)}\n\n".encode()


async def _events(body: dict[str, Any]) -> AsyncIterator[bytes]:
    question, since = _after_last_user(body.get("messages") or [])
    steps = plan(question)
    done = sum(1 for m in since if m.get("role") == "assistant" and m.get("tool_calls"))
    pause = _PAUSE.search(question)
    if pause and done >= 1:
        await asyncio.sleep(float(pause.group(1)))
    if done < len(steps) and body.get("tools"):
        yield _chunk(body, {"role": "assistant", "content": ""})
        for i, (name, args) in enumerate(steps[done]):
            half = len(args) // 2
            first = {"index": i, "id": f"call_{done}_{i}", "type": "function"}
            yield _chunk(
                body,
                {"tool_calls": [{**first, "function": {"name": name, "arguments": args[:half]}}]},
            )
            yield _chunk(
                body, {"tool_calls": [{"index": i, "function": {"arguments": args[half:]}}]}
            )
        yield _chunk(body, {}, "tool_calls")
    else:
        results = [str(m.get("content")) for m in since if m.get("role") == "tool"]
        answer = "answer: " + " / ".join(results)
        for piece in re.findall(r"\S+\s*", answer):
            yield _chunk(body, {"role": "assistant", "content": piece})
        yield _chunk(body, {}, "stop")
    yield b"data: [DONE]\n\n"


async def chat(request: Request) -> StreamingResponse:
    body = await request.json()
    REQUESTS.append(body)
    return StreamingResponse(_events(body), media_type="text/event-stream")


async def requests(request: Request) -> JSONResponse:
    return JSONResponse(REQUESTS)


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


app = Starlette(
    routes=[
        Route("/v1/chat/completions", chat, methods=["POST"]),
        Route("/requests", requests),
        Route("/health", health),
    ]
)


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
