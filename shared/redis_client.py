"""Building Redis clients: one place that knows the timeouts and retries."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared.keys import BLOCK_SOCKET_GRACE_S

#: Socket timeout of clients that never block: a healthy Redis answers in
#: well under this.
COMMAND_TIMEOUT_S = 5.0


def make_redis(
    url: str,
    *,
    block_ms: int | None = None,
    max_connections: int = 32,
    client_name: str | None = None,
    decode_responses: bool = True,
) -> Redis:
    """A client for ``url`` with a bounded pool: callers wait for a free
    connection rather than opening more, so a process holds at most
    ``max_connections`` however many sockets or turns it serves.

    ``client_name`` shows in ``CLIENT LIST``, so an operator can tell whose
    connections are whose. ``block_ms``: the longest BLOCK this client will issue; its socket
    timeout is set above it, so a blocked read is not taken for a dead
    connection. Commands retry a few times with jittered backoff on connection
    errors, so a Redis restart is ridden out rather than crashed on.
    ``decode_responses=False``: a client for binary values (uploaded files).
    """
    timeout = COMMAND_TIMEOUT_S
    if block_ms is not None:
        timeout = block_ms / 1000 + BLOCK_SOCKET_GRACE_S
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=None,
        decode_responses=decode_responses,
        socket_timeout=timeout,
        socket_connect_timeout=COMMAND_TIMEOUT_S,
        health_check_interval=30,
        client_name=client_name,
        retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=2.0), retries=3),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )
    return Redis.from_pool(pool)
