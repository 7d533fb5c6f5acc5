"""Tools: the tools file (MCP servers, which models may use them) and the
tool steps an assistant message stores.

The tools file is TOML, named by ``TIDECHAT_TOOLS`` (next to the models
file; docs/tools.md). Workers alone connect to MCP servers, so the
servers' URLs, headers and tokens never leave them; a gateway reads the
file only to tell clients which models have tools (server ids). A token
is named by the environment variable holding it (``token_env``), never
written in the file. What reaches a client or the conversation document is a
server's ``id``, a tool's name, the arguments the model wrote and the
tool's (bounded) result, never a server's address or credentials.

    max_steps = 8

    [[servers]]
    id = "calc"
    transport = "http"
    url = "http://calc.internal:8000/mcp"
    token_env = "CALC_MCP_TOKEN"          # sent as "Authorization: Bearer ..."
    models = ["llama-3.1-8b"]             # or ["*"]
    ask = ["delete_everything"]           # these tools need the user's approval
    idempotent = ["add"]                  # safe to run again after a crash

    [[servers]]
    id = "files"
    transport = "stdio"
    command = ["mcp-server-filesystem", "/srv/shared"]
    models = ["*"]
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.toml_file import read_toml_file

#: A server id is part of the function name the model sees
#: (``<server>__<tool>``), so it has no ``__`` and keeps that name within
#: OpenAI's ``^[a-zA-Z0-9_-]{1,64}$``.
ServerId = Annotated[str, Field(pattern=r"^[A-Za-z0-9-]+(_[A-Za-z0-9-]+)*$", max_length=24)]
#: Between a server id and a tool name in the function name the model sees.
NAME_SEPARATOR = "__"
#: The models file's backends that pass tools to the model (their worker
#: backend class says ``supports_tools``; tests/worker/test_tools.py checks
#: the two agree): a model of another backend is offered no tools.
TOOL_BACKENDS = frozenset({"hf"})

#: What a finished tool call came to. ``interrupted``: the worker running it
#: died before it reported back, and the tool is not idempotent, so it is
#: not run again (it may or may not have had its effect). ``denied``: the
#: user refused an "ask" tool (docs/tools.md). ``stopped``: the user stopped
#: the turn while the call ran (the server was sent a cancellation).
ToolStatus = Literal["ok", "error", "timeout", "interrupted", "denied", "stopped"]


class _Server(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: ServerId
    #: Model ids whose turns may use this server's tools; ``"*"``: every model.
    models: list[str] = Field(default_factory=list)
    #: Tools offered to the model; None: every tool the server lists.
    allow: list[str] | None = None
    #: Tools that need the user's approval before each call.
    ask: list[str] = Field(default_factory=list)
    #: Tools safe to run twice: one in flight when its worker died is run
    #: again by the worker that takes the turn over (others are reported to
    #: the model as interrupted).
    idempotent: list[str] = Field(default_factory=list)
    #: One call may take this long; then the model is told it timed out.
    timeout_seconds: Annotated[float, Field(gt=0)] = 60.0

    def __repr__(self) -> str:
        # Never the URL (it may carry credentials), headers or command.
        return f"{type(self).__name__}(id={self.id!r})"

    def __str__(self) -> str:
        return repr(self)

    def serves(self, model_id: str) -> bool:
        return "*" in self.models or model_id in self.models

    def offers(self, tool: str) -> bool:
        return self.allow is None or tool in self.allow


class HttpServer(_Server):
    """An MCP server over streamable HTTP."""

    transport: Literal["http"]
    url: Annotated[str, Field(pattern=r"^https?://")]
    #: Extra request headers (not secrets: use ``token_env`` for those).
    headers: dict[str, str] = Field(default_factory=dict)
    #: Environment variable holding a token, sent as ``Authorization: Bearer``.
    token_env: str | None = None

    def request_headers(self) -> dict[str, str]:
        """The headers a worker sends: the file's, plus the token from the
        environment (read here, at call time, never stored)."""
        headers = dict(self.headers)
        if self.token_env:
            token = os.environ.get(self.token_env)
            if token:
                headers["Authorization"] = f"Bearer {token}"
        return headers


class StdioServer(_Server):
    """An MCP server the worker starts as a subprocess (it must be installed
    on every worker that serves the models using it)."""

    transport: Literal["stdio"]
    command: Annotated[list[str], Field(min_length=1)]
    #: Environment variables passed through to the server process (by name;
    #: the MCP SDK passes only a minimal environment otherwise).
    env: list[str] = Field(default_factory=list)


ServerSpec = Annotated[HttpServer | StdioServer, Field(discriminator="transport")]


class ToolsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: Model calls in one turn at most (each may ask for tools); the last
    #: one is offered no tools, so the turn ends with an answer.
    max_steps: Annotated[int, Field(ge=1, le=64)] = 8
    #: A tool result is cut to this many characters before the model sees it.
    result_max_chars: Annotated[int, Field(ge=100)] = 16_000
    servers: list[ServerSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_ids(self) -> ToolsFile:
        ids = [s.id for s in self.servers]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"server ids appear twice: {', '.join(dupes)}")
        return self

    def for_model(self, model_id: str) -> list[ServerSpec]:
        """The servers whose tools a turn of ``model_id`` is offered."""
        return [s for s in self.servers if s.serves(model_id)]

    def server_ids(self, model_id: str, backend: str) -> list[str]:
        """What a client is told of a model's tools (``GET /api/models``):
        the ids of its servers, none when its backend cannot pass tools to
        the model. Never an address, header or token."""
        if backend not in TOOL_BACKENDS:
            return []
        return [s.id for s in self.for_model(model_id)]

    def server(self, server_id: str) -> ServerSpec | None:
        return next((s for s in self.servers if s.id == server_id), None)


class ToolsFileError(Exception):
    """The tools file is missing or invalid; the message says where and why."""


def load_tools(path: str | Path | None) -> ToolsFile:
    """Read and validate the tools file; no file: no tools."""
    if path is None or str(path) == "":
        return ToolsFile()
    return read_toml_file(Path(path), ToolsFile, "tools file", "TIDECHAT_TOOLS", ToolsFileError)


def function_name(server_id: str, tool: str) -> str:
    """The name the model calls a tool by: ``<server>__<tool>``, cut to
    OpenAI's 64 characters of ``[A-Za-z0-9_-]``."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", tool)
    return f"{server_id}{NAME_SEPARATOR}{safe}"[:64]


# --- what an assistant message stores ------------------------------------------


class ToolCall(BaseModel):
    """One call the model asked for, and what came of it."""

    model_config = ConfigDict(extra="ignore")

    #: The model's id for the call (``tool_call_id`` of the result).
    id: str
    server: str
    tool: str
    #: The arguments as the model wrote them (a JSON object, as text).
    arguments: str
    status: ToolStatus | None = None
    #: The result as the model was given it (text; cut to ``result_max_chars``).
    result: str = ""
    duration_ms: int = 0


class ToolStep(BaseModel):
    """One model call that asked for tools: its text and its calls."""

    model_config = ConfigDict(extra="ignore")

    text: str = ""
    calls: list[ToolCall] = Field(default_factory=list)


def step_messages(steps: list[ToolStep]) -> list[dict[str, Any]]:
    """Steps in OpenAI's chat form: an assistant message with ``tool_calls``
    and one ``tool`` message per result (tools by ``function_name``)."""
    out: list[dict[str, Any]] = []
    for step in steps:
        out.append(
            {
                "role": "assistant",
                "content": step.text,
                "tool_calls": [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {
                            "name": function_name(call.server, call.tool),
                            "arguments": call.arguments,
                        },
                    }
                    for call in step.calls
                ],
            }
        )
        for call in step.calls:
            out.append({"role": "tool", "tool_call_id": call.id, "content": model_result(call)})
    return out


def model_result(call: ToolCall) -> str:
    """What the model reads as a call's result: its text, prefixed by the
    status when the call did not succeed."""
    if call.status in (None, "ok"):
        return call.result
    return f"[{call.status}] {call.result}"


def steps_markdown(steps: list[ToolStep]) -> list[str]:
    """A reply's tool steps as Markdown lines for the export: each call with
    its arguments, status and (first line of) result."""
    lines: list[str] = []
    for step in steps:
        for call in step.calls:
            first = call.result.strip().splitlines()[0][:200] if call.result.strip() else ""
            lines.append(
                f"- tool `{call.server}/{call.tool}` `{call.arguments[:200]}` "
                f"→ {call.status or 'unfinished'}" + (f": {first}" if first else "")
            )
    return [*lines, ""] if lines else []
