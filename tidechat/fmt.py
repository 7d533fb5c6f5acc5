"""How the operator commands print: times, durations, quoted one-line texts.

Kept apart from ``tidechat.ops`` (what a command runs with) so that every
command module can import both without importing each other.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime


def local_time(ms: float, *, date: bool = False) -> str:
    """Local wall-clock time with milliseconds."""
    moment = datetime.fromtimestamp(ms / 1000)
    text = moment.strftime("%Y-%m-%d %H:%M:%S" if date else "%H:%M:%S")
    return f"{text}.{int(ms) % 1000:03d}"


def seconds(value: float | None) -> str:
    """A duration for people: ``0.021s``, ``14.2s``, ``3m05s``, ``2h07m``."""
    if value is None:
        return "-"
    if value < 10:
        return f"{value:.3f}s"
    if value < 60:
        return f"{value:.1f}s"
    if value < 3600:
        return f"{int(value) // 60}m{int(value) % 60:02d}s"
    return f"{int(value) // 3600}h{int(value) % 3600 // 60:02d}m"


def one_line(text: str, width: int | None) -> str:
    """``text`` quoted on one line (newlines and tabs escaped), cut to ``width``."""
    escaped = (
        text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    )
    quoted = f'"{escaped}"'
    if width is not None and len(quoted) > width:
        return quoted[: max(width - 4, 1)] + '..."'
    return quoted


def plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def short(id_: str | None, n: int = 8) -> str:
    return id_[:n] if id_ else "-"


def terminal_width() -> int:
    try:
        return os.get_terminal_size(sys.stdout.fileno()).columns
    except (OSError, ValueError):
        return int(os.environ.get("COLUMNS") or 120)
