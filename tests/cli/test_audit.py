"""``tidechat audit``: the audit log printed, filtered and exported."""

from __future__ import annotations

import asyncio
import json

import pytest
import redis as redis_sync

from shared.audit import AuditLog, Party
from shared.keys import Keys
from shared.redis_client import make_redis
from tests.cli.test_ops import own_prefix, run_sync

__all__ = ["own_prefix"]


async def _write(redis_url: str, keys: Keys) -> None:
    client = make_redis(redis_url)
    log = AuditLog(client, keys)
    try:
        await log.record(
            "user.disabled", actor=Party(id="a1", name="root"), target=Party(id="u1", name="bob")
        )
        await log.record(
            "signin.lockout", address="192.0.2.7", scope="account", failures=8, locked_s=1.0
        )
        await log.record("quota.hit", target=Party(id="u2", name="carol"), quota="turns")
    finally:
        await client.aclose()


def test_audit_prints_filters_and_exports(
    redis_url: str, own_prefix: tuple[Keys, redis_sync.Redis], capsys: pytest.CaptureFixture[str]
) -> None:
    keys, _ = own_prefix
    code, out, _ = run_sync(capsys, "audit")
    assert code == 0 and "no audit entries" in out
    asyncio.run(_write(redis_url, keys))
    code, out, _ = run_sync(capsys, "audit")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 3
    assert "quota.hit" in lines[0] and "user.disabled" in lines[2]  # newest first
    assert "root -> bob" in lines[2]
    _, out, _ = run_sync(capsys, "audit", "--category", "security")
    assert "user.disabled" not in out and "signin.lockout" in out
    _, out, _ = run_sync(capsys, "audit", "--kind", "signin.")
    assert out.splitlines()[0].split()[2] == "signin.lockout"
    _, out, _ = run_sync(capsys, "audit", "--user", "bob", "--json", "-n", "0")
    exported = [json.loads(line) for line in out.splitlines()]
    assert [e["kind"] for e in exported] == ["user.disabled"]
    assert exported[0]["target"] == {"id": "u1", "name": "bob"}
