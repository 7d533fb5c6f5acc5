"""Extraction under bounds: the parser runs in a child process
(``extract_child.py``) with an address-space limit, a CPU-time limit, no
files it may write, and a wall-clock timeout. A hostile file fails with a
reason; it never takes the worker down or holds it past the timeout."""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import signal
import sys
from dataclasses import dataclass


class ExtractError(Exception):
    """The file cannot be read; ``reason`` is for its owner. Not retried:
    reading the same bytes again fails the same way."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ExtractLimits:
    timeout_seconds: float = 60.0
    memory_bytes: int = 768 * 1024 * 1024
    max_pages: int = 2000
    max_chars: int = 5_000_000


@dataclass(frozen=True, slots=True)
class Extracted:
    #: Text per page (one element for formats without pages).
    pages: list[str]
    #: The text went past ``max_chars`` and was cut.
    truncated: bool = False


def _limit(limits: ExtractLimits) -> None:
    """In the child, before it runs Python: its own bounds."""
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    cpu = int(limits.timeout_seconds) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


async def extract(kind: str, mime: str, data: bytes, limits: ExtractLimits) -> Extracted:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-I",  # isolated: no user site, no PYTHON* variables, no cwd on the path
        "-m",
        "worker.documents.extract_child",
        kind,
        mime,
        str(limits.max_pages),
        str(limits.max_chars),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        preexec_fn=lambda: _limit(limits),
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(data), limits.timeout_seconds)
    except TimeoutError as exc:
        raise ExtractError(
            f"reading the file took longer than {limits.timeout_seconds:.0f} seconds"
        ) from exc
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    if proc.returncode != 0:
        rc = proc.returncode or 0
        if rc in (-signal.SIGXCPU, -signal.SIGKILL):
            raise ExtractError("reading the file took more computing time than allowed")
        raise ExtractError(
            "reading the file needed more memory than allowed"
            if rc == 1 and not out
            else f"the file could not be read (the reader stopped with status {rc})"
        )
    try:
        result = json.loads(out)
    except ValueError as exc:
        raise ExtractError("the file could not be read") from exc
    if "error" in result:
        raise ExtractError(str(result["error"]))
    return Extracted([str(p) for p in result["pages"]], bool(result.get("truncated")))
