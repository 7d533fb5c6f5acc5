"""What tidechat needs of its Redis server, and how to say what is missing.

tidechat stores conversations as JSON documents and searches them with the
query engine (``FT.*``): Redis 8 has both built in, older servers need the
RedisJSON and RediSearch modules. A server without them answers
"unknown command" at the first conversation or search, deep inside a
request; the processes check at start instead, and ``/ready`` keeps
checking, so an operator reads what to install rather than a stack trace.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import cast

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared.keys import Keys
from shared.schema import SchemaError, require_schema

#: Feature names, as ``/ready`` reports them.
JSON = "json"
QUERY_ENGINE = "query_engine"

_DESCRIBED = {
    JSON: "the JSON data type (JSON.* commands)",
    QUERY_ENGINE: "the query engine (FT.* commands)",
}

#: How long a process waits between attempts while Redis is unreachable at
#: start, at most: a Redis that comes up later is found within this.
_MAX_BACKOFF_S = 5.0


class RedisFeatureError(RuntimeError):
    """The Redis server lacks something tidechat needs; the message says what
    to install."""


async def missing_features(redis: Redis, keys: Keys) -> list[str]:
    """The features (``JSON``, ``QUERY_ENGINE``) the server does not have.

    Each is probed with a read that touches no data: ``JSON.GET`` of a key
    that is never written (under the deployment's prefix, so ACLs that
    confine a user to its prefix allow it) and ``FT._LIST``. Errors other
    than "unknown command" (unreachable, loading, no permission) are raised.
    """
    execute = cast(Callable[..., Awaitable[object]], redis.execute_command)
    missing = []
    for feature, command in (
        (JSON, ("JSON.GET", keys.probe(), "$")),
        (QUERY_ENGINE, ("FT._LIST",)),
    ):
        try:
            await execute(*command)
        except ResponseError as exc:
            if not str(exc).lower().startswith("unknown command"):
                raise
            missing.append(feature)
    return missing


def explain(missing: list[str], where: str = "the Redis at REDIS_URL") -> str:
    """One message naming what is missing and what to install."""
    what = " and ".join(_DESCRIBED[f] for f in missing)
    return (
        f"{where} lacks {what}, which tidechat needs. Use Redis 8 with its modules "
        "(the official redis:8 Docker image has JSON and the query engine built in), "
        "or Redis Stack (redis-stack-server 7.2+), or load the RedisJSON and RediSearch "
        "modules (--loadmodule rejson.so --loadmodule redisearch.so) into Redis 7.2+. "
        "For a local run, leave REDIS_URL unset: `tidechat up` starts a Redis 8 of its own."
    )


async def require_features(redis: Redis, keys: Keys) -> None:
    """Raise ``RedisFeatureError`` if the server lacks JSON or the query
    engine, or holds data in a layout this release does not serve
    (``shared/schema.py``: the message names ``tidechat migrate``)."""
    missing = await missing_features(redis, keys)
    if missing:
        raise RedisFeatureError(explain(missing))
    try:
        await require_schema(redis, keys)
    except SchemaError as exc:
        raise RedisFeatureError(str(exc)) from exc


async def wait_for_features(redis: Redis, keys: Keys, log: logging.Logger) -> None:
    """``require_features``, waiting while Redis is unreachable or loading its
    data (a process may start before its Redis; it waits rather than exit,
    like it does when Redis goes away later). A missing feature does not come
    back by waiting: that raises at once."""
    backoff = 0.1
    while True:
        try:
            await require_features(redis, keys)
            return
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            # BusyLoadingError (LOADING: reading the AOF) is a ConnectionError.
            log.warning("Redis unreachable (%s); retrying in %.1fs", exc, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _MAX_BACKOFF_S)
