"""Thin helpers over RedisJSON commands.

redis-py's ``json()`` pipelines do not work with the asyncio client, and its
decoding adds a pass over every document; tidechat issues the few JSON
commands it needs directly and decodes once. Paths use bracket notation for
ids (``$.messages["<id>"]``), which is safe because ids are restricted to
``[A-Za-z0-9_-]``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline


def message_path(message_id: str) -> str:
    return f'$.messages["{message_id}"]'


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


async def get_paths(redis: Redis, key: str, *paths: str) -> dict[str, Any] | None:
    """``JSON.GET key path...``: each path's first match (None if it matches
    nothing), or None when the key does not exist."""
    raw = await json_get(redis, key, *paths)
    return decode_paths(raw, paths)


async def json_get(redis: Redis, key: str, *paths: str) -> str | None:
    """``JSON.GET key path...``, undecoded: None when the key does not exist.

    redis-py leaves ``Redis.execute_command`` unannotated; on our
    ``decode_responses=True`` clients the reply is the JSON text.
    """
    execute = cast(Callable[..., Awaitable[object]], redis.execute_command)
    return cast("str | None", await execute("JSON.GET", key, *paths))


def decode_paths(raw: str | None, paths: Iterable[str]) -> dict[str, Any] | None:
    if raw is None:
        return None
    decoded = json.loads(raw)
    paths = list(paths)
    if len(paths) == 1:
        # One path answers a bare array of matches (fakeredis may unwrap it).
        matches = decoded if isinstance(decoded, list) else [decoded]
        return {paths[0]: matches[0] if matches else None}
    return {p: (decoded.get(p) or [None])[0] for p in paths}


def queue_get(pipe: Pipeline, key: str, *paths: str) -> None:
    pipe.execute_command("JSON.GET", key, *paths)


def queue_mset(pipe: Pipeline | Redis, triples: Iterable[tuple[str, str, Any]]) -> Any:
    """``JSON.MSET``: set several paths of several keys atomically."""
    args: list[str] = []
    for key, path, value in triples:
        args.extend((key, path, dumps(value)))
    return pipe.execute_command("JSON.MSET", *args)


def queue_set(pipe: Pipeline | Redis, key: str, path: str, value: Any, *flags: str) -> Any:
    return pipe.execute_command("JSON.SET", key, path, dumps(value), *flags)
