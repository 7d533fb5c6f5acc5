"""The tools file (shared/tools.py): MCP servers, which models use them,
and that their secrets stay out of everything printable."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.tools import (
    TOOL_BACKENDS,
    HttpServer,
    StdioServer,
    ToolCall,
    ToolsFileError,
    ToolStep,
    function_name,
    load_tools,
    step_messages,
)

TOOLS = """
max_steps = 5

[[servers]]
id = "calc"
transport = "http"
url = "http://user:pw@calc.internal:8000/mcp"
headers = { "X-Team" = "blue" }
token_env = "CALC_TOKEN"
models = ["llama"]
ask = ["delete"]
idempotent = ["add"]
timeout_seconds = 5

[[servers]]
id = "files"
transport = "stdio"
command = ["mcp-files", "/srv"]
env = ["FILES_ROOT"]
models = ["*"]
allow = ["read"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tools.toml"
    path.write_text(text)
    return path


def test_servers_and_which_models_use_them(tmp_path: Path) -> None:
    tools = load_tools(write(tmp_path, TOOLS))
    assert tools.max_steps == 5
    calc, files = tools.servers
    assert isinstance(calc, HttpServer) and isinstance(files, StdioServer)
    assert [s.id for s in tools.for_model("llama")] == ["calc", "files"]
    assert [s.id for s in tools.for_model("other")] == ["files"]
    assert calc.ask == ["delete"] and calc.idempotent == ["add"] and calc.timeout_seconds == 5
    assert files.offers("read") and not files.offers("write") and calc.offers("anything")


def test_no_file_means_no_tools() -> None:
    assert load_tools(None).servers == []
    assert load_tools(None).max_steps == 8  # the default step limit


def test_token_comes_from_the_environment_at_call_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calc = load_tools(write(tmp_path, TOOLS)).servers[0]
    assert isinstance(calc, HttpServer)
    assert calc.request_headers() == {"X-Team": "blue"}  # variable unset: no token
    monkeypatch.setenv("CALC_TOKEN", "s3cret-token")
    assert calc.request_headers() == {"X-Team": "blue", "Authorization": "Bearer s3cret-token"}


def test_repr_and_errors_never_show_addresses_or_headers(tmp_path: Path) -> None:
    tools = load_tools(write(tmp_path, TOOLS))
    shown = repr(tools) + str(tools) + str(tools.servers) + f"{tools.servers[0]}"
    assert "pw@" not in shown and "blue" not in shown and "calc.internal" not in shown
    bad = TOOLS.replace("timeout_seconds = 5", 'timeout_seconds = "x"').replace(
        '"X-Team" = "blue"', '"X-Team" = "hunter2"'
    )
    with pytest.raises(ToolsFileError) as caught:
        load_tools(write(tmp_path, bad))
    assert "timeout_seconds" in str(caught.value) and "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("fragment", "why"),
    [
        ('id = "a__b"\ntransport = "stdio"\ncommand = ["x"]', "id"),
        ('id = "x"\ntransport = "ftp"', "transport"),
        ('id = "x"\ntransport = "http"\nurl = "file:///etc/passwd"', "url"),
        ('id = "x"\ntransport = "stdio"\ncommand = []', "command"),
        ('id = "x"\ntransport = "stdio"\ncommand = ["x"]\nsecret = "y"', "secret"),
    ],
)
def test_invalid_servers_are_refused(tmp_path: Path, fragment: str, why: str) -> None:
    with pytest.raises(ToolsFileError, match=why):
        load_tools(write(tmp_path, f"[[servers]]\n{fragment}\n"))


def test_duplicate_ids_and_missing_file(tmp_path: Path) -> None:
    twice = '[[servers]]\nid = "a"\ntransport = "stdio"\ncommand = ["x"]\n' * 2
    with pytest.raises(ToolsFileError, match="twice"):
        load_tools(write(tmp_path, twice))
    with pytest.raises(ToolsFileError, match="does not exist"):
        load_tools(tmp_path / "nope.toml")


def test_steps_in_openai_tool_message_form() -> None:
    step = ToolStep(
        text="let me add",
        calls=[
            ToolCall(
                id="c1", server="calc", tool="add", arguments='{"a":1}', status="ok", result="3"
            ),
            ToolCall(
                id="c2", server="calc", tool="x.y", arguments="{}", status="timeout", result="slow"
            ),
        ],
    )
    assert function_name("calc", "x.y") == "calc__x_y"
    assert step_messages([step]) == [
        {
            "role": "assistant",
            "content": "let me add",
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "calc__add", "arguments": '{"a":1}'},
                },
                {
                    "id": "c2",
                    "type": "function",
                    "function": {"name": "calc__x_y", "arguments": "{}"},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "3"},
        {"role": "tool", "tool_call_id": "c2", "content": "[timeout] slow"},
    ]


def test_clients_are_told_server_ids_of_models_whose_backend_takes_tools(
    tmp_path: Path,
) -> None:
    tools = load_tools(write(tmp_path, TOOLS))
    assert tools.server_ids("llama", "hf") == ["calc", "files"]
    assert tools.server_ids("other", "hf") == ["files"]
    # A backend that cannot pass tools to its model is offered none.
    assert tools.server_ids("llama", "scripted") == []
    assert tools.server_ids("llama", "llamacpp") == []
    assert load_tools(None).server_ids("llama", "hf") == []


def test_the_backends_said_to_take_tools_are_those_whose_class_does() -> None:
    from worker.backends.hf import HFBackend
    from worker.backends.llamacpp import LlamaCppBackend
    from worker.backends.scripted import ScriptedBackend

    classes = {"hf": HFBackend, "llamacpp": LlamaCppBackend, "scripted": ScriptedBackend}
    assert {
        name for name, cls in classes.items() if getattr(cls, "supports_tools", False)
    } == TOOL_BACKENDS
