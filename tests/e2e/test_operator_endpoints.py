"""``/ready`` and ``/metrics`` tell an anonymous caller nothing about the
machines behind them (issue 18, finding 7: both were public and named worker
hosts, pids, queue depths and socket counts)."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.stack import OPERATOR, Stack, running_stack, scripted_models

pytestmark = pytest.mark.e2e

#: One pool served by the stack's worker, one that no worker serves.
MODELS = (
    scripted_models()
    + scripted_models().replace('"scripted"', '"orphan"', 1)
    + ('pool = "nobody"\n')
)


def poll(check: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def operator_ready(stack: Stack) -> dict[str, Any]:
    try:
        body: dict[str, Any] = httpx.get(stack.url + "/ready", headers=OPERATOR, timeout=5).json()
    except httpx.HTTPError:
        return {}
    return body


@pytest.fixture(scope="module")
def half_stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A gateway and a worker for the default pool only: never ready."""
    directory: Path = tmp_path_factory.mktemp("half")
    with running_stack(redis_url, directory, models=MODELS, workers=0, gateways=0) as stack:
        stack.start_gateway()
        stack.start_worker("--pool", "default")
        poll(
            lambda: (
                operator_ready(stack).get("pools", {}).get("default", {}).get("live_workers") == 1
            )
        )
        yield stack


def test_anonymous_ready_says_why_and_names_no_host_pid_or_count(half_stack: Stack) -> None:
    body = operator_ready(half_stack)
    anonymous = httpx.get(half_stack.url + "/ready", timeout=5)
    assert anonymous.status_code == 503
    assert anonymous.json() == {
        "ready": False,
        "reasons": ["no live worker for pool nobody"],
        "ingestion": "no live ingestion worker",
    }
    text = anonymous.text
    assert socket.gethostname() not in text
    assert not any(ch.isdigit() for ch in text)  # no pid, no count
    # With the metrics token: every figure, for the operator.
    assert body["pools"]["default"]["live_workers"] == 1
    assert body["pools"]["nobody"]["live_workers"] == 0
    assert str(os.getpid()) not in text


def test_metrics_need_the_token_when_one_is_set(half_stack: Stack) -> None:
    with httpx.Client(base_url=half_stack.url, timeout=5) as http:
        refused = http.get("/metrics")
        wrong = http.get("/metrics", headers={"Authorization": "Bearer guess"})
        allowed = http.get("/metrics", headers=OPERATOR)
    assert refused.status_code == wrong.status_code == 401
    assert "tidechat" not in refused.text.replace("metrics token", "")
    assert allowed.status_code == 200
    assert "tidechat_gateway_sockets" in allowed.text


def test_ready_reports_the_ingestion_pool(half_stack: Stack) -> None:
    """Like the model pools: whether live ingestion workers read uploaded
    files (reported; chat does not need them, so ``ready`` does not either)."""
    assert operator_ready(half_stack)["ingestion"]["live_workers"] == 0
    half_stack.start_ingest()
    poll(lambda: operator_ready(half_stack).get("ingestion", {}).get("live_workers") == 1, 60)
    anonymous = httpx.get(half_stack.url + "/ready", timeout=5).json()
    assert anonymous["ingestion"] == "ok"
