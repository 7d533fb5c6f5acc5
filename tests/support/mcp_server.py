"""An MCP server of the tests' own, built with the ``mcp`` SDK's server API.

Its tools count their own invocations, so a test can prove that a completed
call never ran twice (``counts`` reads the counters without counting):

=============  =============================================================
``add``        ``a + b`` (counted as ``add`` and as ``add:<a>:<b>``)
``slow``       sleeps ``seconds`` then answers "slept"; counts ``slow`` when
               it starts and ``slow_done`` when it finishes (a cancelled
               call starts without finishing; ``cancelled`` counts those)
``fail``       raises: the call's result is an error
``counts``     the counters as JSON
=============  =============================================================

Over streamable HTTP with ``--port`` (``MCP_TEST_TOKEN`` set: every request
must carry ``Authorization: Bearer <it>``; others get 401), over stdio with
``--stdio``. It prints ``mcp_server listening on http://127.0.0.1:PORT/mcp``
once it accepts connections (HTTP).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from collections import Counter
from typing import Any

from mcp.server.mcpserver import MCPServer

COUNTS: Counter[str] = Counter()

server = MCPServer("tidechat-test-tools")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    COUNTS["add"] += 1
    COUNTS[f"add:{a}:{b}"] += 1  # per call, when every call's arguments differ
    return a + b


@server.tool()
async def slow(seconds: float) -> str:
    """Wait for some seconds, then answer."""
    COUNTS["slow"] += 1
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        COUNTS["cancelled"] += 1
        raise
    COUNTS["slow_done"] += 1
    return "slept"


@server.tool()
def fail() -> str:
    """Always fails."""
    COUNTS["fail"] += 1
    raise RuntimeError("this tool always fails")


@server.tool()
def counts() -> str:
    """The invocation counters."""
    return json.dumps(dict(COUNTS))


def _with_token(app: Any, token: str) -> Any:
    async def guarded(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            if headers.get(b"authorization", b"").decode() != f"Bearer {token}":
                await send({"type": "http.response.start", "status": 401, "headers": []})
                await send({"type": "http.response.body", "body": b"unauthorized"})
                return
        await app(scope, receive, send)

    return guarded


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--stdio", action="store_true")
    args = parser.parse_args(argv)
    if args.stdio:
        server.run("stdio")
        return
    import uvicorn

    app = server.streamable_http_app()
    token = os.environ.get("MCP_TEST_TOKEN")
    asgi = _with_token(app, token) if token else app

    class Announce(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            print(f"mcp_server listening on http://127.0.0.1:{args.port}/mcp", flush=True)

    config = uvicorn.Config(asgi, host="127.0.0.1", port=args.port, log_level="warning")
    Announce(config).run()


if __name__ == "__main__":
    main()
