"""Issue 16, findings 1 and 2, as a user meets them in Chromium: one account
in two browsers (two browser contexts), each on its own gateway, one Redis.

A second tab (another device) sees, live, the chats the first one starts,
its question and the reply as it streams, renames and deletions; and a
message sent from a tab that fell behind is not attached to an old reply
behind the user's back: the tab catches up and lets the user send it onto
the conversation as it is now."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.stack import Stack, running_stack
from tests.web.conftest import MODELS, Watch, new_page
from tests.web.test_accessibility import axe, report
from tests.web.test_browser_e2e import (
    PASSWORD,
    QUESTION,
    REPLY,
    active_conversation_id,
    api,
    choose_model,
    reply_text,
    send,
    shot,
    sign_up,
    wait_reply_done,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

expect: Any = pytest.importorskip("playwright.sync_api").expect

UNSENT = "article[aria-label='You said (not sent yet)']"

#: Records in the page when a question with the given text first shows, as
#: the page's own clock (every page of one Chromium shares it).
_SEEN_AT = """(text) => {
  window.__seenAt = null;
  const look = () => {
    for (const el of document.querySelectorAll("article[aria-label='You said']")) {
      if (el.textContent.includes(text)) { window.__seenAt = performance.timeOrigin + performance.now(); return true; }
    }
    return false;
  };
  if (look()) return;
  const observer = new MutationObserver(() => { if (look()) observer.disconnect(); });
  observer.observe(document.body, { childList: true, subtree: true, characterData: true });
}"""


@pytest.fixture(scope="module")
def two_gateways(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(
        redis_url, tmp_path_factory.mktemp("livesync"), models=MODELS, workers=1, gateways=2
    ) as stack:
        yield stack


def log_in(page: Any, base: str, username: str) -> None:
    page.goto(base)
    expect(page.locator("main.auth[data-ready]")).to_be_attached()
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("textbox", name="Message")).to_be_visible()


@pytest.fixture
def two_browsers(two_gateways: Stack, browser: Any) -> Iterator[tuple[Any, Any]]:
    """The same user signed in on gateway 0 (A) and on gateway 1 (B)."""
    watch_a, watch_b = Watch(), Watch()
    a, b = new_page(browser, watch_a), new_page(browser, watch_b)
    try:
        name = sign_up(a, two_gateways.gateway_url(0))
        log_in(b, two_gateways.gateway_url(1), name)
        yield a, b
    finally:
        a.context.close()
        b.context.close()
    assert watch_a.errors == [] and watch_b.errors == []


def sidebar(page: Any) -> Any:
    return page.get_by_role("navigation", name="Conversations")


def test_second_browser_follows_chats_replies_renames_and_deletions(
    two_browsers: tuple[Any, Any],
) -> None:
    a, b = two_browsers
    # A new chat started in A shows in B's sidebar while its reply is still streaming.
    choose_model(a, "slow")
    send(a, "Tides near the harbour mouth")
    expect(a.get_by_role("button", name="Stop generating")).to_be_visible()
    link = sidebar(b).get_by_role("link", name=re.compile("Tides near the harbour"))
    expect(link).to_be_visible(timeout=5_000)
    link.click()
    # B opened it mid-reply: it shows the question and the reply growing, live.
    expect(b.locator(QUESTION).last).to_contain_text("Tides near the harbour mouth")
    expect(b.locator(REPLY).last).to_have_attribute("data-status", "streaming", timeout=5_000)
    expect(b.get_by_role("button", name="Stop generating")).to_be_visible()
    shot(b, "live-sync-streaming-in-b")
    found: dict[str, Any] = {}
    axe(b, "a reply from another browser, streaming", found)
    done_a, done_b = wait_reply_done(a), wait_reply_done(b)
    assert reply_text(done_b) == reply_text(done_a)
    cid = active_conversation_id(a)
    assert active_conversation_id(b) == cid

    # A second question in A: B shows it (and then the reply) without a reload.
    choose_model(a, "scripted")
    b.evaluate(_SEEN_AT, "And at low water")
    sent_at = a.evaluate("performance.timeOrigin + performance.now()")
    send(a, "And at low water")
    expect(b.locator(QUESTION).last).to_contain_text("And at low water", timeout=5_000)
    print(
        f"\nB showed A's question {b.evaluate('window.__seenAt') - sent_at:.0f} ms after A sent it"
    )
    done_a, done_b = wait_reply_done(a), wait_reply_done(b)
    expect(done_b).to_contain_text("You said: And at low water")
    assert reply_text(done_b) == reply_text(done_a)
    expect(b.locator(QUESTION)).to_have_count(2)
    expect(b.locator(REPLY)).to_have_count(2)
    shot(b, "live-sync-second-turn-in-b")

    # Renamed in A: B's sidebar and header follow.
    sidebar(a).get_by_role("button", name=re.compile("Options for Tides")).click()
    a.get_by_role("menuitem", name="Rename").click()
    title = a.get_by_role("textbox", name="Conversation title")
    title.fill("Harbour tides")
    title.press("Enter")
    expect(sidebar(b).get_by_role("link", name="Harbour tides")).to_be_visible(timeout=5_000)

    # Deleted in A: gone from B, which says so and leaves it.
    sidebar(a).get_by_role("button", name="Options for Harbour tides").click()
    a.get_by_role("menuitem", name="Delete").click()
    a.get_by_role("dialog", name="Delete conversation?").get_by_role(
        "button", name="Delete"
    ).click()
    expect(sidebar(b).get_by_role("link", name="Harbour tides")).to_have_count(0, timeout=5_000)
    notices = b.get_by_role("region", name="Notifications")
    expect(notices).to_contain_text("This conversation was deleted in another tab or device.")
    expect(b).not_to_have_url(re.compile(cid))
    axe(b, "told that the open conversation was deleted elsewhere", found)
    report(found, "live-sync")


def test_a_stale_tab_does_not_fork_the_conversation(two_browsers: tuple[Any, Any]) -> None:
    a, b = two_browsers
    send(a, "First question")
    wait_reply_done(a)
    cid = active_conversation_id(a)
    sidebar(b).get_by_role("link", name=re.compile("First question")).click()
    expect(b.locator(REPLY).last).to_have_attribute("data-status", "done")

    # B loses its connection; meanwhile A asks and gets an answer.
    b.context.set_offline(True)
    expect(b.get_by_role("status").filter(has_text="Offline")).to_be_visible()
    send(a, "Asked in A while B was away")
    wait_reply_done(a)
    # B's user, not knowing, asks too: it waits for the connection.
    send(b, "Asked in B while away")
    expect(b.locator(UNSENT)).to_contain_text("Waiting for the connection")
    b.context.set_offline(False)

    # Not attached to the old reply: B catches up, shows A's turn, and asks what to do.
    unsent = b.locator(UNSENT)
    expect(unsent).to_contain_text("added to this conversation first", timeout=10_000)
    expect(b.locator(QUESTION).filter(has_text="Asked in A while B was away")).to_be_visible()
    shot(b, "live-sync-conflict-in-b")
    found: dict[str, Any] = {}
    axe(b, "a message not sent: the conversation moved on", found)
    report(found, "live-sync-conflict")
    conv = api(b, "GET", f"/api/conversations/{cid}")
    assert "Asked in B while away" not in [m["content"] for m in conv["messages"].values()]

    unsent.get_by_role("button", name="Send it now").click()
    expect(unsent).to_have_count(0)
    wait_reply_done(b)
    expect(b.locator(REPLY).last).to_contain_text("You said: Asked in B while away")
    conv = api(b, "GET", f"/api/conversations/{cid}")
    by_content = {m["content"]: m for m in conv["messages"].values()}
    mine, theirs = by_content["Asked in B while away"], by_content["Asked in A while B was away"]
    # Onto the new tail (A's reply), not beside A's question: one branch, no hidden "2/2".
    assert conv["messages"][mine["parent_id"]]["parent_id"] == theirs["id"]
    assert all(len(m["children"]) <= 1 for m in conv["messages"].values())
    # And A, in step, shows B's question without a reload.
    expect(a.locator(QUESTION).last).to_contain_text("Asked in B while away", timeout=5_000)
