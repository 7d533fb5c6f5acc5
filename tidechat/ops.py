"""Operator commands: look into the streams, and replay what happened.

``tidechat replay session SID``   a session stream's timeline (``--follow``: live)
``tidechat replay turn TURN_ID``  a recorded turn re-run on today's workers
``tidechat turn TURN_ID``        one turn: conversation, session, where it is now
``tidechat streams``              each pool's queue, pending turns, workers, dead letters
``tidechat dead list|retry``      the dead-letter streams, and requeuing one turn

Every command reads ``REDIS_URL`` (unset: the Redis ``tidechat up`` started,
recorded under the data dir), ``TIDECHAT_MODELS`` and
``TIDECHAT_KEY_PREFIX`` like the services do, writes its result to stdout and
progress to stderr, and exits 1 (after one line saying why) when it cannot
do what was asked.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared.keys import Keys
from shared.models_file import ModelCatalog
from shared.paths import default_data_dir
from shared.redis_client import make_redis
from shared.settings import CommonSettings
from tidechat.local_redis import URL_FILE, recorded_url

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
                # Pool keys carry the pool as their hash tag: tc:prompts:{pool}.
                found.add(str(key).removeprefix(f"{self.keys.prefix}{kind}:").strip("{}"))
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


def settings_for_ops() -> tuple[CommonSettings, str]:
    """The settings, with the Redis that ``tidechat up`` started (and
    recorded under the data dir) when no ``REDIS_URL`` is set; and what to
    say if that Redis cannot be reached."""
    settings = CommonSettings()
    if "redis_url" in settings.model_fields_set:
        return settings, "is REDIS_URL right?"
    path = default_data_dir() / URL_FILE
    recorded = recorded_url(default_data_dir())
    if recorded is None:
        return settings, "set REDIS_URL, or start tidechat up (it records where its Redis listens)"
    settings.redis_url = recorded
    return settings, f"the address tidechat up recorded in {path}: is it still running?"


def run(command: Command, args: argparse.Namespace) -> int:
    """Run one command: build its client, map failures to a message and exit 1."""
    settings, hint = settings_for_ops()
    catalog = settings.load_models()  # a ModelsFileError is reported by cli.main
    return asyncio.run(_run(command, args, settings, catalog, hint))


async def _run(
    command: Command,
    args: argparse.Namespace,
    settings: CommonSettings,
    catalog: ModelCatalog,
    hint: str = "is REDIS_URL right?",
) -> int:
    url = redact_url(settings.redis_url)
    redis = make_redis(
        settings.redis_url, block_ms=BLOCK_MS, max_connections=4, client_name="tidechat-ops"
    )
    try:
        try:
            await redis.ping()
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise OpsError(f"cannot reach Redis at {url} ({exc}); {hint}") from exc
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
