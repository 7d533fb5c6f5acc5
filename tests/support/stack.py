"""A real tidechat stack for end-to-end tests: gateway and worker processes
(``tidechat gateway`` / ``tidechat worker``) on free ports, against the
session's real Redis, with a models file written by the test.

    with running_stack(redis_url, tmp_path, models=SCRIPTED) as stack:
        token = stack.signup("alice")
        ...

Each process logs to a file in the test's directory; on failure the logs
are printed so a broken start is easy to read.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tidechat.local_redis import free_port
from tidechat.processes import Process, ProcessExited, tidechat_command, wait_ready

#: The stacks' metrics token: ``/ready``'s details and ``/metrics`` need it.
METRICS_TOKEN = "stack-metrics-token"
OPERATOR = {"Authorization": f"Bearer {METRICS_TOKEN}"}

#: A scripted model that answers at once with 64 tokens.
SCRIPTED_FAST = """
[[models]]
id = "scripted"
label = "Scripted (tests)"
backend = "scripted"
reply_tokens = 64
tokens_per_second = 0
"""


def scripted_models(tokens_per_second: float = 0, reply_tokens: int = 64, **extra: object) -> str:
    lines = [
        "[[models]]",
        'id = "scripted"',
        'label = "Scripted (tests)"',
        'backend = "scripted"',
        f"reply_tokens = {reply_tokens}",
        f"tokens_per_second = {tokens_per_second}",
    ]
    for name, value in extra.items():
        lines.append(f"{name} = {value!r}" if not isinstance(value, str) else f'{name} = "{value}"')
    return "\n".join(lines) + "\n"


#: The processes of a stack (``popen`` is the running process).
Proc = Process


@dataclass
class Stack:
    redis_url: str
    directory: Path
    env: dict[str, str]
    gateways: list[Proc] = field(default_factory=list)
    workers: list[Proc] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports[0]}"

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/ws"

    def gateway_url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.ports[index]}"

    def _spawn(self, name: str, args: list[str], extra_env: dict[str, str] | None = None) -> Proc:
        env = {**self.env, **(extra_env or {})}
        return Process(name, tidechat_command(*args), self.directory / f"{name}.log", env).start()

    def start_gateway(self, port: int | None = None, env: dict[str, str] | None = None) -> Proc:
        port = port or free_port()
        proc = self._spawn(f"gateway-{len(self.gateways)}", ["gateway", "--port", str(port)], env)
        self.gateways.append(proc)
        self.ports.append(port)
        return proc

    def start_worker(self, *args: str, env: dict[str, str] | None = None) -> Proc:
        proc = self._spawn(f"worker-{len(self.workers)}", ["worker", *args], env)
        self.workers.append(proc)
        return proc

    def start_ingest(self, *args: str, env: dict[str, str] | None = None) -> Proc:
        """An ingestion worker (``tidechat ingest``): counted with the workers."""
        proc = self._spawn(f"ingest-{len(self.workers)}", ["ingest", *args], env)
        self.workers.append(proc)
        return proc

    def wait_ready(self, timeout: float = 30.0, index: int = 0) -> None:
        try:
            wait_ready(
                self.gateway_url(index) + "/ready", timeout, watch=self.gateways + self.workers
            )
        except ProcessExited as exc:
            raise RuntimeError(f"{exc.process.name} exited early:\n{self.logs()}") from exc
        except TimeoutError as exc:
            raise RuntimeError(f"stack not ready: {exc}\n{self.logs()}") from exc

    def logs(self) -> str:
        return "\n".join(
            f"--- {proc.name} ---\n{proc.tail(40)}" for proc in self.gateways + self.workers
        )

    def signup(self, username: str, password: str = "correct horse battery") -> str:
        r = httpx.post(
            self.url + "/api/auth/signup",
            json={"username": username, "password": password},
            timeout=10,
        )
        r.raise_for_status()
        return str(r.json()["token"])

    def client(self, token: str | None = None, index: int = 0) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.gateway_url(index), headers=headers, timeout=15)

    def stop(self) -> None:
        for proc in self.workers + self.gateways:
            proc.stop()  # one at a time: workers hand back their turns first


def new_stack(
    redis_url: str,
    directory: Path,
    *,
    models: str = SCRIPTED_FAST,
    env: dict[str, str] | None = None,
) -> Stack:
    """A stack with nothing started yet: for tests of how processes start."""
    directory.mkdir(parents=True, exist_ok=True)
    models_file = directory / "models.toml"
    models_file.write_text(models)
    base_env = {
        k: v for k, v in os.environ.items() if not k.startswith(("TIDECHAT_", "REDIS_URL", "HF_"))
    }
    base_env.update(
        {
            "REDIS_URL": redis_url,
            "TIDECHAT_MODELS": str(models_file),
            # Per-user limits off: tests drive many turns per user at once;
            # tests of the limits set their own.
            "TIDECHAT_RATE_LIMIT_PER_MINUTE": "0",
            "TIDECHAT_METRICS_TOKEN": METRICS_TOKEN,
            "TIDECHAT_MAX_CONCURRENT_TURNS": "0",
            "TIDECHAT_DAILY_TOKEN_BUDGET": "0",
            # Every test signs in from 127.0.0.1 against one Redis: the
            # per-address throttle would add up across tests (the fuzzer's
            # wrong passwords...). Tests of the throttle set their own.
            "TIDECHAT_SIGNIN_ATTEMPTS_PER_ADDRESS": "100000",
            "TIDECHAT_DATA_DIR": str(directory / "data"),
            "PYTHONUNBUFFERED": "1",
        }
    )
    base_env.update(env or {})
    return Stack(redis_url, directory, base_env)


@contextmanager
def running_stack(
    redis_url: str,
    directory: Path,
    *,
    models: str = SCRIPTED_FAST,
    workers: int = 2,
    gateways: int = 1,
    env: dict[str, str] | None = None,
    worker_args: tuple[str, ...] = (),
) -> Iterator[Stack]:
    stack = new_stack(redis_url, directory, models=models, env=env)
    try:
        for _ in range(gateways):
            stack.start_gateway()
        for _ in range(workers):
            stack.start_worker(*worker_args)
        for i in range(gateways):
            stack.wait_ready(index=i)
        yield stack
    except BaseException:
        print(stack.logs())
        raise
    finally:
        stack.stop()
