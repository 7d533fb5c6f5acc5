"""What a user sees when a limit of issue 18 refuses their message: their
storage quota used up, or the server's storage full. The message stays on
screen, marked not sent, with the reason in words."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as redis_sync
from redis.exceptions import OutOfMemoryError

from tests.support.stack import Stack, running_stack
from tests.web.conftest import ARTIFACTS, MODELS
from tests.web.test_browser_e2e import send, sign_up, wait_reply_done
from tidechat.local_redis import LocalRedis

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

expect: Any = pytest.importorskip("playwright.sync_api").expect

UNSENT = "article[aria-label='You said (not sent yet)']"


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"web-{name}.png"))


@pytest.fixture(scope="module")
def quota_stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {"TIDECHAT_QUOTA_MESSAGES": "4"}
    with running_stack(
        redis_url, tmp_path_factory.mktemp("quota-web"), models=MODELS, env=env
    ) as stack:
        yield stack


def test_a_used_up_quota_is_explained_next_to_the_message(quota_stack: Stack, page: Any) -> None:
    sign_up(page, quota_stack.url)
    for text in ("First question", "Second question"):
        send(page, text)
        expect(wait_reply_done(page)).to_contain_text(text)
    send(page, "One too many")
    unsent = page.locator(UNSENT)
    expect(unsent).to_contain_text("One too many")
    alert = unsent.get_by_role("alert")
    expect(alert).to_contain_text("Not sent")
    expect(alert).to_contain_text("delete some conversations to make room")
    shot(page, "quota-exceeded")


@pytest.fixture
def full_stack(tmp_path: Path) -> Iterator[tuple[Stack, LocalRedis]]:
    server = LocalRedis(tmp_path / "redis", persistence=False, maxmemory="40mb")
    server.start()
    try:
        with running_stack(server.url, tmp_path / "stack", models=MODELS, workers=1) as stack:
            yield stack, server
    finally:
        server.stop()


def test_a_full_storage_is_explained_next_to_the_message(
    full_stack: tuple[Stack, LocalRedis], page: Any
) -> None:
    stack, server = full_stack
    sign_up(page, stack.url)
    send(page, "Before the disk filled")
    wait_reply_done(page)
    client = redis_sync.Redis.from_url(server.url)
    try:
        n = 0
        while True:
            try:
                client.set(f"junk:{n}", b"j" * 1_000_000)
            except OutOfMemoryError:
                break
            n += 1
        used = int(client.info("memory")["used_memory"])
        client.config_set("maxmemory", used - 1_000_000)  # no slack (test_storage_limits.py)
        send(page, "After it filled up")
        alert = page.locator(UNSENT).get_by_role("alert")
        expect(alert).to_contain_text("storage is full")
        shot(page, "storage-full")
    finally:
        client.close()
