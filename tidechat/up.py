"""``tidechat up``: the whole system on one machine, in one process tree.

Starts (unless ``REDIS_URL`` names a server, which must have JSON and the
query engine) a Redis 8 with JSON, the query engine and AOF persistence in the
data directory, the gateway, ``--workers`` worker processes serving every
pool of the models file, and one ingestion worker (reads and indexes
uploaded files: docs/documents.md); waits until the
gateway is ready and prints its URL. Ctrl-C or SIGTERM stops the children in
order (workers, which hand back unfinished turns; the gateway; Redis last,
so it writes its data) and leaves no process behind. Each child also gets
SIGTERM from the kernel if this process dies without cleaning up.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from shared.paths import default_data_dir
from tidechat.local_redis import (
    LocalRedis,
    LocalRedisError,
    forget_url,
    port_in_use,
    record_url,
)
from tidechat.processes import Process, ProcessExited, tidechat_command, wait_ready
from tidechat.up_checks import UpError, check_external_redis, migrate, prepare_models

#: How long a child gets to stop after SIGTERM before it is killed.
STOP_TIMEOUT_S = 30.0
#: The local Redis's memory limit unless told otherwise: history is text, so
#: this holds a small team's years of chats, and leaves the machine room.
DEFAULT_MAXMEMORY = "1gb"
#: How long ``up`` waits for ``/ready`` (the first start loads the model).
READY_TIMEOUT_S = 300.0


@dataclass
class Child(Process):
    """A supervised child: its recent exits, for the restart backoff."""

    restarts: list[float] = field(default_factory=list)

    def launch(self) -> None:
        # Appending: a restart keeps the log of the run that died. Own
        # session: Ctrl-C reaches `up` only; it stops its children in order.
        self.start(append=True, own_session=True, die_with_parent=True)


class Up:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.data_dir: Path = (args.data_dir or default_data_dir()).expanduser().resolve()
        self.logs = self.data_dir / "logs"
        self.redis: LocalRedis | None = None
        self.children: list[Child] = []
        self._stopping = False

    def _env(self, redis_url: str) -> dict[str, str]:
        env = dict(os.environ)
        env["REDIS_URL"] = redis_url
        env["TIDECHAT_DATA_DIR"] = str(self.data_dir)
        if self.args.model:
            env["TIDECHAT_MODEL_PATH"] = str(self.args.model.expanduser().resolve())
        env.setdefault("PYTHONUNBUFFERED", "1")
        return env

    def _start_redis(self) -> str:
        url = os.environ.get("REDIS_URL")
        if url:
            check_external_redis(url)
            return url
        self.redis = LocalRedis(
            self.data_dir / "redis",
            port=self.args.redis_port,
            appendfsync=self.args.appendfsync,
            maxmemory=self.args.redis_maxmemory,
        )
        try:
            self.redis.start()
        except LocalRedisError as exc:
            raise UpError(str(exc)) from exc
        # `tidechat streams`, `turn`, `replay`, `dead` find it here without REDIS_URL.
        record_url(self.data_dir, self.redis.url)
        return self.redis.url

    def start(self) -> str:
        if port_in_use(
            self.args.port, self.args.host if self.args.host != "0.0.0.0" else "127.0.0.1"
        ):
            raise UpError(
                f"port {self.args.port} is in use; choose another with --port "
                "or stop what is using it"
            )
        self.logs.mkdir(parents=True, exist_ok=True)
        prepare_models(self.data_dir, self.args.model)
        redis_url = self._start_redis()
        migrate(redis_url)
        env = self._env(redis_url)
        for i in range(self.args.workers):
            self.children.append(
                Child(
                    f"worker-{i + 1}",
                    tidechat_command("worker"),
                    self.logs / f"worker-{i + 1}.log",
                    env,
                )
            )
        self.children.append(
            Child("ingest", tidechat_command("ingest"), self.logs / "ingest.log", env)
        )
        self.children.append(
            Child(
                "gateway",
                tidechat_command(
                    "gateway", "--host", self.args.host, "--port", str(self.args.port)
                ),
                self.logs / "gateway.log",
                env,
            )
        )
        for child in self.children:
            child.launch()
        host = "127.0.0.1" if self.args.host in ("0.0.0.0", "::") else self.args.host
        url = f"http://{host}:{self.args.port}"
        self._wait_ready(url)
        return url

    def _wait_ready(self, url: str) -> None:
        try:
            wait_ready(
                url + "/ready",
                READY_TIMEOUT_S,
                watch=self.children,
                interval=0.25,
                give_up=lambda: self._stopping,
            )
        except ProcessExited as exc:
            raise UpError(
                f"{exc.process.name} exited while starting:\n{exc.process.tail()}"
            ) from exc
        except TimeoutError as exc:
            raise UpError(f"tidechat did not become ready: {exc}") from exc

    def supervise(self) -> None:
        """Restart a worker that dies (with backoff); stop if the gateway or Redis dies."""
        while not self._stopping:
            time.sleep(0.5)
            if (
                self.redis is not None
                and self.redis.process is not None
                and self.redis.process.poll() is not None
            ):
                raise UpError(
                    "redis-server exited; see " + str(self.data_dir / "redis" / "redis.log")
                )
            for child in self.children:
                if child.alive() or self._stopping:
                    continue
                if child.name == "gateway":
                    raise UpError(f"the gateway exited:\n{child.tail()}")
                now = time.monotonic()
                child.restarts = [t for t in child.restarts if now - t < 60] + [now]
                if len(child.restarts) > 5:
                    raise UpError(f"{child.name} keeps exiting:\n{child.tail()}")
                print(f"tidechat: {child.name} exited; restarting it", file=sys.stderr)
                child.launch()

    def stop(self) -> None:
        """Workers first (they hand back what they run), then the gateway, Redis last."""
        self._stopping = True
        workers = [c for c in self.children if c.name != "gateway"]
        for child in workers:
            child.signal(signal.SIGTERM)
        for child in self.children:
            if child.stop(STOP_TIMEOUT_S):
                print(
                    f"tidechat: {child.name} did not stop in {STOP_TIMEOUT_S:.0f}s; killed it",
                    file=sys.stderr,
                )
        if self.redis is not None:
            self.redis.stop()
            forget_url(self.data_dir, self.redis.url)


def run_up(args: argparse.Namespace) -> int:
    up = Up(args)

    def on_signal(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        url = up.start()
        print(f"tidechat is running at {url}  (logs: {up.logs}; Ctrl-C to stop)", flush=True)
        if up.redis is not None:
            print(
                f"Redis: {up.redis.url} (tidechat streams, turn, replay and dead use it)",
                flush=True,
            )
        up.supervise()
        return 0
    except KeyboardInterrupt:
        print("\ntidechat: stopping...", file=sys.stderr, flush=True)
        return 0
    except UpError as exc:
        print(f"tidechat: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        up.stop()


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "up",
        help="run everything locally: Redis (unless REDIS_URL), the gateway and workers",
    )
    p.add_argument("--host", default="127.0.0.1", help="gateway address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="gateway port (default 8000)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument(
        "--model",
        type=Path,
        default=None,
        metavar="PATH.gguf",
        help="run this GGUF file as the local model instead of the bundled Gemma 3 270M, "
        "with the context length it was trained for (default: $TIDECHAT_MODEL_PATH)",
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where Redis data, the model and logs live (default: $TIDECHAT_DATA_DIR "
        "or ~/.local/share/tidechat)",
    )
    p.add_argument(
        "--redis-port", type=int, default=0, help="port of the local Redis (default: a free one)"
    )
    p.add_argument(
        "--appendfsync",
        choices=["everysec", "always"],
        default="everysec",
        help="AOF fsync policy of the local Redis: everysec (default; a machine crash may "
        "lose the last second) or always (every write on disk first; slower)",
    )
    p.add_argument(
        "--redis-maxmemory",
        default=os.environ.get("TIDECHAT_REDIS_MAXMEMORY") or DEFAULT_MAXMEMORY,
        help="memory the local Redis may use, e.g. 512mb or 4gb (default: "
        "$TIDECHAT_REDIS_MAXMEMORY or 1gb); past it writes are refused (noeviction) and "
        "users are told the storage is full",
    )
    p.set_defaults(func=run_up)
