"""What both benchmarks need to run tidechat's processes and measure them:
a clean environment, spawning with a log, waiting for readiness, stopping,
and reading a process's CPU and memory from /proc."""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from tidechat.local_redis import LocalRedis
from tidechat.processes import Process, stop_all, wait_ready


def clean_env(**settings: str) -> dict[str, str]:
    """This environment without any tidechat setting or Redis URL of the
    caller's, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TIDECHAT_", "REDIS_URL"))}
    env.update(settings)
    return env


def workspace(prefix: str, models: str, **settings: str) -> tuple[Path, LocalRedis, dict[str, str]]:
    """A temporary directory with the models file and a Redis of its own
    (started: stop it), and the environment tidechat's processes run with:
    that Redis and models file, warnings only, no rate limit, plus ``settings``."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    server = LocalRedis(workdir / "redis", persistence=False)
    server.start()
    models_file = workdir / "models.toml"
    models_file.write_text(models)
    env = clean_env(
        REDIS_URL=server.url,
        TIDECHAT_MODELS=str(models_file),
        TIDECHAT_LOG_LEVEL="warning",
        TIDECHAT_RATE_LIMIT_PER_MINUTE="0",
        **settings,
    )
    return workdir, server, env


def run_async(coro: Any) -> Any:
    """uvloop when installed: the load generator shares the machine, keep it cheap."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def load_average() -> str:
    """The machine's load, as ``uptime`` prints it: to print beside a timing
    (a figure taken on a busy machine says so)."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f}"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (robust to a noisy machine)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def spawn(args: list[str], env: dict[str, str], log: Path) -> Process:
    """``python <args>`` with its output in ``log``."""
    return Process(log.stem, [sys.executable, *args], log, env).start()


def wait_http(url: str, timeout: float = 30) -> None:
    wait_ready(url, timeout)


def stop(procs: list[Process]) -> None:
    stop_all(procs)
