"""Running tidechat's processes from Python: one process with its output in
a log file, and waiting for a server to answer. What ``tidechat up``
supervises, what the end-to-end tests' stack starts (``tests/support/
stack.py``) and what the benchmarks measure (``bench/harness.py``) are the
same thing, so they share this."""

from __future__ import annotations

import contextlib
import ctypes
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

_PR_SET_PDEATHSIG = 1


def tidechat_command(*args: str) -> list[str]:
    """The command line of ``tidechat <args>`` with this Python."""
    return [sys.executable, "-m", "tidechat.cli", *args]


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """Ask the kernel to SIGTERM this child when its parent dies (Linux)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class ProcessExited(RuntimeError):
    """A process that was waited on exited first."""

    def __init__(self, process: Process) -> None:
        super().__init__(f"{process.name} exited:\n{process.tail()}")
        self.process = process


@dataclass
class Process:
    """A process started with its stdout and stderr in ``log``."""

    name: str
    args: list[str]
    log: Path
    env: dict[str, str]
    popen: subprocess.Popen[bytes] | None = None

    def start(
        self, *, append: bool = False, own_session: bool = False, die_with_parent: bool = False
    ) -> Process:
        """``append``: keep the log of earlier runs (a restart);
        ``own_session``: Ctrl-C in the terminal reaches only the parent,
        which stops its children in order; ``die_with_parent``: SIGTERM when
        the parent dies, however it dies."""
        handle = self.log.open("ab" if append else "wb")
        try:
            self.popen = subprocess.Popen(
                self.args,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=own_session,
                preexec_fn=_die_with_parent if die_with_parent else None,
            )
        finally:
            handle.close()
        return self

    @property
    def pid(self) -> int:
        if self.popen is None:
            raise RuntimeError(f"{self.name} was not started")
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def signal(self, sig: int) -> None:
        if self.popen is not None and self.alive():
            self.popen.send_signal(sig)

    def stop(self, timeout: float = 15.0) -> bool:
        """SIGTERM, then SIGKILL after ``timeout`` seconds; True if it had to
        be killed."""
        if self.popen is None or not self.alive():
            return False
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
            return True
        return False

    def tail(self, lines: int = 20) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def stop_all(processes: Sequence[Process], timeout: float = 15.0) -> None:
    """SIGTERM to all at once (they shut down side by side), then wait for each."""
    for process in processes:
        process.signal(signal.SIGTERM)
    for process in processes:
        process.stop(timeout)


def wait_ready(
    url: str,
    timeout: float,
    *,
    watch: Sequence[Process] = (),
    interval: float = 0.1,
    give_up: Callable[[], bool] = lambda: False,
) -> None:
    """Wait until ``url`` answers 200. ProcessExited if one of ``watch``
    exits meanwhile; TimeoutError (with the last answer) after ``timeout``
    seconds or once ``give_up()`` is true."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline and not give_up():
        for process in watch:
            if not process.alive():
                raise ProcessExited(process)
        try:
            r = httpx.get(url, timeout=2)
            if r.status_code == 200:
                return
            last = r.text
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(interval)
    raise TimeoutError(f"{url} not ready after {timeout:.0f}s: {last}")
