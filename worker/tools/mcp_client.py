"""The MCP servers of one turn, through the MCP Python SDK (``mcp``).

One ``mcp.Client`` per server the turn's model may use, opened when the turn
starts and closed when it ends, in the turn's own task (the SDK's transports
live in anyio task groups, which must be entered and left by one task).
Calls may run concurrently on one client: requests are multiplexed.

A server that cannot be reached is left out of the turn (its tools are not
offered) and logged by id only: neither its URL nor its headers ever reach a
log line, an event or the conversation.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from shared.tools import HttpServer, ServerSpec, ToolStatus, function_name

log = logging.getLogger(__name__)

#: Connecting to one server (and listing its tools) may take this long.
CONNECT_TIMEOUT_S = 15.0
#: A call whose server does not answer its own timeout's cancellation is
#: given up this much later.
BACKSTOP_S = 2.0


@dataclass(frozen=True, slots=True)
class OfferedTool:
    server: ServerSpec
    tool: str
    description: str
    input_schema: dict[str, Any]

    @property
    def function_name(self) -> str:
        return function_name(self.server.id, self.tool)

    def definition(self) -> dict[str, Any]:
        """The OpenAI-style function definition the model is offered."""
        return {
            "type": "function",
            "function": {
                "name": self.function_name,
                "description": self.description[:1024],
                "parameters": self.input_schema or {"type": "object", "properties": {}},
            },
        }


@dataclass(slots=True)
class CallOutcome:
    status: ToolStatus
    text: str
    duration_ms: int


async def _target(server: ServerSpec, stack: AsyncExitStack) -> Any:
    if isinstance(server, HttpServer):
        # The transport does not close a client it is given: the stack does.
        http = await stack.enter_async_context(
            create_mcp_http_client(headers=server.request_headers())
        )
        return streamable_http_client(server.url, http_client=http)
    env = {name: os.environ[name] for name in server.env if name in os.environ}
    return StdioServerParameters(command=server.command[0], args=server.command[1:], env=env)


def result_text(result: Any) -> str:
    """A CallToolResult as the text the model reads."""
    parts: list[str] = []
    for item in getattr(result, "content", None) or []:
        kind = getattr(item, "type", "")
        if kind == "text":
            parts.append(str(getattr(item, "text", "")))
        else:
            parts.append(f"[{kind or 'content'} omitted]")
    if not parts and getattr(result, "structured_content", None) is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False))
    return "\n".join(parts)


class McpTools:
    """``async with McpTools(servers) as tools``: the turn's connections."""

    def __init__(self, servers: list[ServerSpec]) -> None:
        self.servers = servers
        self._stack = AsyncExitStack()
        self._clients: dict[str, Client] = {}
        self.offered: list[OfferedTool] = []

    async def __aenter__(self) -> McpTools:
        await self._stack.__aenter__()
        for server in self.servers:
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT_S):
                    target = await _target(server, self._stack)
                    client = await self._stack.enter_async_context(
                        Client(target, raise_exceptions=False)
                    )
                    listing = await client.list_tools()
            except Exception as exc:
                # By id and exception type only: the message may hold the URL.
                log.warning("MCP server %s unavailable: %s", server.id, type(exc).__name__)
                continue
            self._clients[server.id] = client
            for tool in listing.tools:
                if server.offers(tool.name):
                    self.offered.append(
                        OfferedTool(
                            server, tool.name, tool.description or "", dict(tool.input_schema or {})
                        )
                    )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        try:
            await self._stack.aclose()
        except Exception as exc:  # a server going away at the end is no failure
            log.info("closing MCP connections: %s", type(exc).__name__)

    def find(self, name: str) -> OfferedTool | None:
        return next((t for t in self.offered if t.function_name == name), None)

    async def call(self, tool: OfferedTool, arguments: str) -> CallOutcome:
        """Run one call; every failure is a result for the model, not an exception
        (cancellation aside: that is a stop)."""
        started = time.monotonic()

        def done(status: ToolStatus, text: str) -> CallOutcome:
            return CallOutcome(status, text, int((time.monotonic() - started) * 1000))

        try:
            args = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError as exc:
            return done("error", f"the arguments are not valid JSON: {exc}")
        if not isinstance(args, dict):
            return done("error", "the arguments must be a JSON object")
        client = self._clients[tool.server.id]
        limit = tool.server.timeout_seconds
        timed_out = done("timeout", f"the tool took longer than {limit:g} s")
        try:
            # The SDK's own timeout sends the server a cancellation; the
            # outer one is a backstop.
            async with asyncio.timeout(limit + BACKSTOP_S):
                result = await client.call_tool(tool.tool, args, read_timeout_seconds=limit)
        except TimeoutError:
            return timed_out
        except Exception as exc:
            if time.monotonic() - started >= limit:
                return timed_out
            log.info("tool %s/%s failed: %s", tool.server.id, tool.tool, type(exc).__name__)
            return done("error", f"the tool failed ({type(exc).__name__})")
        text = result_text(result)
        return done("error" if getattr(result, "is_error", False) else "ok", text)
