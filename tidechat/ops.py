"""Operator commands: look into the streams, and replay what happened.

``tidechat replay session SID``   a session stream's timeline (``--follow``: live)
``tidechat replay turn TURN_ID``  a recorded turn re-run on today's workers
``tidechat streams``              each pool's queue, pending turns, workers, dead letters
``tidechat dead list|retry``      the dead-letter streams, and requeuing one turn

Every command reads ``REDIS_URL``, ``TIDECHAT_MODELS`` and
``TIDECHAT_KEY_PREFIX`` like the services do, writes its result to stdout and
progress to stderr, and exits 1 (after one line saying why) when it cannot
do what was asked.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared.keys import Keys
from shared.models_file import ModelCatalog
from shared.redis_client import make_redis
from shared.settings import CommonSettings

#: Longest BLOCK these commands issue (``--follow``, waiting for a replay):
#: short, so a vanished session or a deadline is noticed soon.
BLOCK_MS = 1_000


class OpsError(Exception):
    """The command cannot do what was asked; the message says why (and what to do)."""


@dataclass(slots=True)
class Ops:
    """What every command gets: settings, key names, a Redis client, the models."""

    settings: CommonSettings
    redis: Redis
    catalog: ModelCatalog

    @property
    def keys(self) -> Keys:
        return self.settings.keys

    async def pools(self) -> list[str]:
        """Pools of the models file, and any other pool with a prompt or
        dead-letter stream (a model since removed from the file)."""
        found = set(self.catalog.pools())
        for kind in ("prompts", "dead"):
            pattern = glob_escape(f"{self.keys.prefix}{kind}:") + "*"
            async for key in self.redis.scan_iter(match=pattern, count=1_000, _type="stream"):
                found.add(str(key).removeprefix(f"{self.keys.prefix}{kind}:"))
        return sorted(found)


Command = Callable[[Ops, argparse.Namespace], Awaitable[int]]


def glob_escape(text: str) -> str:
    """``text`` matched literally by a SCAN pattern (a key prefix may hold ``*``)."""
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


def redact_url(url: str) -> str:
    """The Redis URL without its password: error messages never show secrets."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))


def run(command: Command, args: argparse.Namespace) -> int:
    """Run one command: build its client, map failures to a message and exit 1."""
    settings = CommonSettings()
    catalog = settings.load_models()  # a ModelsFileError is reported by cli.main
    return asyncio.run(_run(command, args, settings, catalog))


async def _run(
    command: Command, args: argparse.Namespace, settings: CommonSettings, catalog: ModelCatalog
) -> int:
    url = redact_url(settings.redis_url)
    redis = make_redis(
        settings.redis_url, block_ms=BLOCK_MS, max_connections=4, client_name="tidechat-ops"
    )
    try:
        try:
            await redis.ping()
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise OpsError(f"cannot reach Redis at {url} ({exc}); is REDIS_URL right?") from exc
        return await command(Ops(settings, redis, catalog), args)
    except OpsError as exc:
        print(f"tidechat: {exc}", file=sys.stderr)
        return 1
    except (RedisConnectionError, RedisTimeoutError) as exc:
        print(f"tidechat: lost Redis at {url} ({exc})", file=sys.stderr)
        return 1
    except RedisError as exc:
        print(f"tidechat: Redis at {url} refused a command: {exc}", file=sys.stderr)
        return 1
    finally:
        await redis.aclose()


def raise_if_cancelled() -> None:
    """End a loop of blocking reads whose cancellation (Ctrl-C) was swallowed.

    redis-py (8.x) can swallow a cancel that lands while a reply is read (see
    ``shared.aio.cancel_and_wait``); the task still counts it as cancelling,
    so a loop that checks after every read stops within one BLOCK.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


# --- formatting shared by the commands --------------------------------------


def entry_ms(entry_id: str) -> int:
    """The Unix time (ms) in a stream entry id: when Redis added the entry."""
    return int(entry_id.split("-", 1)[0])


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


# --- the parsers ---------------------------------------------------------------


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``replay``, ``streams`` and ``dead`` on the ``tidechat`` parser."""
    from tidechat import queues, replay, timeline

    def command(parser: argparse.ArgumentParser, impl: Command) -> None:
        parser.set_defaults(func=lambda args: run(impl, args))

    rp = sub.add_parser("replay", help="replay a session's events or a recorded turn")
    rsub = rp.add_subparsers(dest="replay_command", required=True)

    rs = rsub.add_parser(
        "session",
        help="print a session stream's timeline",
        description="One line per event: local time, +seconds since the previous event, "
        "event id, type, turn (short id), size of the event JSON, and its text.",
    )
    rs.add_argument("session_id", metavar="SID")
    rs.add_argument(
        "--from",
        dest="from_id",
        metavar="EVENT_ID",
        help="start at this event id (or Unix ms time); earlier events are skipped",
    )
    rs.add_argument("--follow", "-f", action="store_true", help="keep printing new events")
    rs.add_argument("--full", action="store_true", help="do not cut long texts")
    rs.add_argument("--json", action="store_true", help="one frame per line, as clients get it")
    command(rs, timeline.replay_session)

    rt = rsub.add_parser(
        "turn",
        help="re-run a recorded turn on the current workers and compare",
        description="Finds the turn on the prompt (or dead-letter) streams, re-runs its prompt "
        "in a throw-away copy of the conversation (the user's conversation is not touched), "
        "waits for the reply and prints it beside the recorded one.",
    )
    rt.add_argument("turn_id", metavar="TURN_ID", help="a turn id (or its first 6+ characters)")
    rt.add_argument("--model", help="replay on this model instead of the recorded one")
    rt.add_argument(
        "--timeout", type=float, default=120.0, help="seconds to wait for the reply (default 120)"
    )
    rt.add_argument(
        "--keep",
        type=int,
        default=3600,
        metavar="SECONDS",
        help="how long the replay's conversation copy and session live (default 3600)",
    )
    rt.add_argument(
        "--side-by-side", action="store_true", help="print the two texts in two columns"
    )
    command(rt, replay.replay_turn)

    st = sub.add_parser(
        "streams",
        help="each pool's queue, pending turns per worker, live workers, dead letters",
    )
    st.add_argument("--json", action="store_true", help="machine-readable output")
    st.add_argument(
        "--dead", type=int, default=3, metavar="N", help="newest dead letters shown per pool"
    )
    command(st, queues.streams)

    dp = sub.add_parser("dead", help="list or retry turns that failed past the retry limit")
    dsub = dp.add_subparsers(dest="dead_command", required=True)
    dl = dsub.add_parser("list", help="the dead letters, newest first")
    dl.add_argument("--pool", help="only this pool")
    dl.add_argument("--json", action="store_true", help="machine-readable output")
    command(dl, queues.dead_list)
    dr = dsub.add_parser("retry", help="queue a dead letter's turn again")
    dr.add_argument("entry_id", metavar="ID", help="the dead letter's entry id (dead list)")
    dr.add_argument("--pool", help="the pool it is in (default: look in every pool)")
    command(dr, queues.dead_retry)
