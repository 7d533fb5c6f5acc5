"""Starting the tool tests' servers as processes: the MCP test server
(``mcp_server.py``, streamable HTTP, with a bearer token) and the scripted
tool-calling upstream (``tool_upstream.py``); reading the MCP server's
invocation counters."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from tidechat.local_redis import free_port
from tidechat.processes import Process, wait_ready

#: The MCP test server's bearer token (what the worker's tools file names
#: through ``token_env``); tests check it never leaves the worker.
MCP_TOKEN = "mcp-secret-token-4e1f"
MCP_TOKEN_ENV = "CALC_MCP_TOKEN"
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class ToolServers:
    mcp_url: str
    upstream_url: str

    def tools_file(
        self, directory: Path, *, models: str = '["*"]', extra: str = "", timeout: float = 30
    ) -> Path:
        path = directory / "tools.toml"
        path.write_text(
            f"""
[[servers]]
id = "calc"
transport = "http"
url = "{self.mcp_url}"
token_env = "{MCP_TOKEN_ENV}"
models = {models}
timeout_seconds = {timeout:g}
idempotent = ["slow"]
{extra}
"""
        )
        return path

    def models_file_entry(self, model_id: str = "tooly") -> str:
        return f"""
[[models]]
id = "{model_id}"
backend = "hf"
base_url = "{self.upstream_url}/v1"
model = "scripted-tools"
auto_title = false
"""

    async def counts(self) -> dict[str, int]:
        headers = {"Authorization": f"Bearer {MCP_TOKEN}"}
        async with (
            create_mcp_http_client(headers=headers) as http,
            Client(streamable_http_client(self.mcp_url, http_client=http)) as client,
        ):
            result = await client.call_tool("counts", {})
        return dict(json.loads(result.content[0].text))  # type: ignore[union-attr]


def _wait_listening(proc: Process, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "listening" in proc.log.read_text(errors="replace"):
            return
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited:\n{proc.tail()}")
        time.sleep(0.1)
    raise TimeoutError(f"{proc.name} did not start:\n{proc.tail()}")


@contextmanager
def tool_servers(directory: Path) -> Iterator[ToolServers]:
    directory.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "MCP_TEST_TOKEN": MCP_TOKEN, "PYTHONPATH": str(ROOT)}
    mcp_port, upstream_port = free_port(), free_port()
    mcp = Process(
        "mcp-server",
        [sys.executable, "-m", "tests.support.mcp_server", "--port", str(mcp_port)],
        directory / "mcp-server.log",
        env,
    ).start()
    upstream = Process(
        "tool-upstream",
        [sys.executable, "-m", "tests.support.tool_upstream", "--port", str(upstream_port)],
        directory / "tool-upstream.log",
        env,
    ).start()
    try:
        _wait_listening(mcp)
        wait_ready(f"http://127.0.0.1:{upstream_port}/health", 30.0, watch=[upstream])
        yield ToolServers(f"http://127.0.0.1:{mcp_port}/mcp", f"http://127.0.0.1:{upstream_port}")
    finally:
        mcp.stop()
        upstream.stop()
