"""A 10,000-message conversation in a real Chromium: it opens at its tail
(one page, not the whole conversation), scrolls up to its first message
(older pages fetched on the way), and a branch switch in its middle (to a
version whose messages the client has not loaded) shows that branch."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.stack import Stack
from tests.web.conftest import ARTIFACTS, own_stack
from tests.web.test_browser_e2e import api, sign_up

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
expect: Any = pytest.importorskip("playwright.sync_api").expect

N = 10_000
#: The user message in the middle that has a second version (its own branch).
MIDDLE = 5_000


def chain_with_a_fork(n: int) -> dict[str, Any]:
    t = time.time() - n - 10
    messages: dict[str, Any] = {}
    parent = None
    for i in range(n):
        mid = f"m{i}"
        user = i % 2 == 0
        messages[mid] = {
            "id": mid,
            "parent_id": parent,
            "role": "user" if user else "assistant",
            "content": f"Question {i} about tides" if user else f"Answer {i}.",
            "finish_reason": None if user else "stop",
            "created_at": t + i,
        }
        parent = mid
    # A second version of the middle question (newer than the first), answered.
    messages["fork"] = {
        "id": "fork",
        "parent_id": f"m{MIDDLE - 1}",
        "role": "user",
        "content": "The other version of the middle question",
        "created_at": t + n + 1,
    }
    messages["forkreply"] = {
        "id": "forkreply",
        "parent_id": "fork",
        "role": "assistant",
        "content": "Answer on the other branch.",
        "finish_reason": "stop",
        "created_at": t + n + 2,
    }
    return {"title": "Ten thousand messages", "messages": messages, "current_id": parent}


@pytest.fixture(scope="module")
def long_stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # A 10,000-deep chain (and a fork) is past what imports allow by default.
    with own_stack(
        redis_url,
        tmp_path_factory,
        "longstack",
        TIDECHAT_IMPORT_MAX_DEPTH="20000",
        TIDECHAT_IMPORT_MAX_MESSAGES="20000",
    ) as stack:
        yield stack


def message(page: Any, mid: str) -> Any:
    return page.locator(f"article[data-message-id='{mid}']")


def first_rendered(page: Any) -> int:
    """The number of the oldest chain message in the DOM (rows are virtual)."""
    ids = page.locator("article.msg").evaluate_all("els => els.map((e) => e.dataset.messageId)")
    numbers = [int(i[1:]) for i in ids if i and i[0] == "m" and i[1:].isdigit()]
    return min(numbers) if numbers else N


def scroll_up_until(page: Any, mid: str, most: int = 200) -> int:
    """Scroll to the list's top again and again (each time an older page
    comes in above it) until message ``mid`` is loaded, then find it (the
    list keeps what was on screen in place as pages come in, and renders
    only the rows near the viewport). Returns how many scrolls it took."""
    target = int(mid[1:])
    scroller = page.locator(".message-list__scroll")
    attempt = 0
    while first_rendered(page) > target:
        assert attempt < most, f"message {mid} was never loaded"
        scroller.evaluate("el => { el.scrollTop = 0; }")
        page.wait_for_timeout(150)
        attempt += 1
    # Loaded: search the scroll offset whose rows hold it.
    low, high = 0, int(scroller.evaluate("el => el.scrollHeight"))
    for _ in range(40):
        if message(page, mid).count():
            return attempt
        middle = (low + high) // 2
        scroller.evaluate("(el, top) => { el.scrollTop = top; }", middle)
        page.wait_for_timeout(50)
        if first_rendered(page) > target:
            high = middle
        else:
            low = middle
    raise AssertionError(f"message {mid} is loaded but could not be scrolled to")


def test_ten_thousand_messages_open_at_the_tail_scroll_to_the_first_and_switch_branch(
    long_stack: Stack, page: Any
) -> None:
    sign_up(page, long_stack.url)
    imported = api(page, "POST", "/api/conversations/import", chain_with_a_fork(N))
    assert "id" in imported, imported
    cid = imported["id"]

    # What the browser fetches to open it: one page of the branch's tail.
    # (expect_response, not a "response" listener: a listener reading the
    # body can still be running when the message shows.)
    started = time.perf_counter()
    with page.expect_response(
        lambda r: f"/api/conversations/{cid}" in r.url and r.request.method == "GET",
        timeout=15_000,
    ) as opening:
        page.goto(f"{long_stack.url}/c/{cid}")
    expect(message(page, f"m{N - 1}")).to_be_visible(timeout=15_000)
    opened = time.perf_counter() - started
    first = (opening.value.url, len(opening.value.body()))
    print(
        f"\n{N:,}-message conversation: last message visible {opened * 1000:.0f} ms after "
        f"navigation; first page {first[1] / 1024:.0f} KB; "
        f"{page.locator('article.msg').count()} rows in the DOM"
    )
    assert first[1] <= 200 * 1024, "the first answer holds more than a page"
    assert message(page, "m0").count() == 0  # not loaded: only the tail

    # Up to the middle, where the question has a second version.
    scrolls = scroll_up_until(page, f"m{MIDDLE}")
    middle = message(page, f"m{MIDDLE}")
    middle.scroll_into_view_if_needed()
    versions = middle.get_by_role("group", name="Versions")
    expect(versions).to_contain_text("1/2")
    middle.hover()
    middle.get_by_role("button", name="Next version").click()
    expect(message(page, "forkreply")).to_be_visible(timeout=15_000)
    expect(message(page, "fork").get_by_role("group", name="Versions")).to_contain_text("2/2")
    assert message(page, f"m{N - 1}").count() == 0  # the other branch left the screen
    deadline = time.monotonic() + 10
    while api(page, "GET", f"/api/conversations/{cid}?limit=1")["current_id"] != "forkreply":
        assert time.monotonic() < deadline, "the branch switch did not reach the server"
        page.wait_for_timeout(100)

    # ...and back, then on up to the very first message.
    fork = message(page, "fork")
    fork.hover()
    fork.get_by_role("button", name="Previous version").click()
    expect(message(page, "forkreply")).to_have_count(0, timeout=15_000)
    scroll_up_until(page, f"m{MIDDLE}")
    expect(middle.get_by_role("group", name="Versions")).to_contain_text("1/2")
    more = scroll_up_until(page, "m0")
    expect(message(page, "m0")).to_be_visible()
    print(f"scrolled to the middle in {scrolls} and to the first message in {scrolls + more} steps")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web-long-conversation-top.png"))
