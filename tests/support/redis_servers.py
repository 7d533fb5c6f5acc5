"""Variants of the local Redis 8 for tests: one missing modules (what an
operator's Redis may lack), and one running as a single-node Redis Cluster
(cross-slot checking on).

The cluster node owns all 16384 slots, so a plain (non-cluster) client works
against it unchanged: no key is ever MOVED. What changes is what Redis Cluster
refuses: a multi-key command, a MULTI/EXEC or a script whose keys hash to
different slots answers ``CROSSSLOT``. Only database 0 exists in cluster
mode (``SELECT 1`` fails). Quirks, in docs/redis.md.
"""

from __future__ import annotations

import os
import socket
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, cast

import redis as redis_sync

from tidechat.local_redis import LocalRedis, LocalRedisError, free_port

#: Every hash slot of Redis Cluster (0..16383).
SLOTS = 16384

#: ``TIDECHAT_TEST_REDIS=cluster`` runs the tests' Redis (the session's and
#: the chaos tests' own) as a one-node cluster. Read at import, before the
#: tests' ``clean_environ`` clears TIDECHAT_* variables.
TEST_REDIS = os.environ.get("TIDECHAT_TEST_REDIS", "plain")
if TEST_REDIS not in ("plain", "cluster"):
    raise RuntimeError(f"TIDECHAT_TEST_REDIS={TEST_REDIS!r}: use plain or cluster")


def _without_modules(args: list[str], keep: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    skip = False
    for i, arg in enumerate(args):
        if skip:
            skip = False
            continue
        if arg == "--loadmodule":
            skip = True
            if any(args[i + 1].endswith(name) for name in keep):
                out += [arg, args[i + 1]]
            continue
        out.append(arg)
    return out


@dataclass
class PartialRedis(LocalRedis):
    """The local Redis 8 with only the modules named in ``keep`` (file names,
    e.g. ``("rejson.so",)``; empty: a plain Redis with neither JSON nor the
    query engine)."""

    keep: tuple[str, ...] = ()

    def command(self) -> list[str]:
        return _without_modules(super().command(), self.keep)


def _call(host: str, port: int, *args: str) -> bytes:
    """One command over a raw socket (RESP), its reply's first bytes: enough
    for the few admin commands below, without a client's retries."""
    payload = f"*{len(args)}\r\n".encode()
    for arg in args:
        data = arg.encode()
        payload += b"$%d\r\n%s\r\n" % (len(data), data)
    with socket.create_connection((host, port), timeout=2) as s:
        s.sendall(payload)
        return s.recv(65536)


#: Commands every ``ClusterRedis`` refused before it stopped (``CROSSSLOT``
#: and any other rejection), by command: what ``TIDECHAT_TEST_REDIS=cluster``
#: prints at the end of the run (tests/conftest.py).
REJECTED: Counter[str] = Counter()


@dataclass
class ClusterRedis(LocalRedis):
    """The local Redis 8 (JSON and the query engine loaded) as a one-node
    Redis Cluster that serves every slot itself."""

    def stop(self, timeout: float = 20.0) -> None:
        if self.process is not None and self.process.poll() is None:
            self._count_rejections()
        super().stop(timeout)

    def _count_rejections(self) -> None:
        """Redis counts, per command, the calls it refused without running them
        (``rejected_calls``: CROSSSLOT among them); scripts that touched a key
        of another slot count as ``failed_calls`` of EVALSHA/EVAL/FCALL."""
        client = redis_sync.Redis(host=self.host, port=self.port, socket_timeout=5)
        try:
            stats = cast(dict[str, Any], client.info("commandstats"))
            errors = cast(dict[str, Any], client.info("errorstats"))
        except redis_sync.RedisError:
            return
        finally:
            client.close()
        for name, row in stats.items():
            command = name.removeprefix("cmdstat_")
            if row.get("rejected_calls"):
                REJECTED[f"{command} (rejected)"] += int(row["rejected_calls"])
            if command in ("eval", "evalsha", "fcall") and row.get("failed_calls"):
                REJECTED[f"{command} (failed in the script)"] += int(row["failed_calls"])
        for name, row in errors.items():
            REJECTED[f"error {name.removeprefix('errorstat_')}"] += int(row["count"])

    #: The cluster bus port. Left to Redis it is the port + 10000, which a
    #: free port above 55535 cannot have (the server refuses to start).
    bus_port: int = 0

    def command(self) -> list[str]:
        while self.bus_port in (0, self.port):
            self.bus_port = free_port(self.host)
        return [
            *super().command(),
            "--cluster-enabled", "yes",
            "--cluster-port", str(self.bus_port),
            "--cluster-config-file", str(self.data_dir / "nodes.conf"),
        ]  # fmt: skip

    def start(self, timeout: float = 15.0) -> None:
        super().start(timeout)
        # A restart keeps its slots (nodes.conf); a first start assigns them.
        info = _call(self.host, self.port, "CLUSTER", "INFO")
        if f"cluster_slots_assigned:{SLOTS}".encode() not in info:
            reply = _call(self.host, self.port, "CLUSTER", "ADDSLOTSRANGE", "0", str(SLOTS - 1))
            if not reply.startswith(b"+OK"):
                raise LocalRedisError(f"CLUSTER ADDSLOTSRANGE failed: {reply!r}")
        # The node says cluster_state:ok a moment after it owns every slot
        # (until then each command answers CLUSTERDOWN).
        deadline = time.monotonic() + timeout
        while b"cluster_state:ok" not in _call(self.host, self.port, "CLUSTER", "INFO"):
            if time.monotonic() > deadline:
                self.stop()
                raise LocalRedisError(f"the cluster node did not reach state ok in {timeout:.0f}s")
            time.sleep(0.05)


def redis_kind() -> type[LocalRedis]:
    """The kind of Redis the tests start: plain, or a cluster node (above)."""
    return ClusterRedis if TEST_REDIS == "cluster" else LocalRedis
