"""axe-core (from web/node_modules, the npm package) run inside the real page
on every state a user reaches: sign-up, an empty chat, a chat with markdown,
code, tables and maths scrolled through, a long sidebar, the dialogs, a phone
with the drawer open, and dark mode. No serious or critical violation may
remain. A summary of what was found goes to test-artifacts/axe.json."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.stack import Stack
from tests.web.conftest import ARTIFACTS, ROOT, Watch, new_page
from tests.web.test_browser_e2e import (
    RICH_ANSWER,
    api,
    send,
    sign_up,
    to_sign_up_form,
    unique,
    wait_reply_done,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

expect: Any = pytest.importorskip("playwright.sync_api").expect

AXE = ROOT / "web" / "node_modules" / "axe-core" / "axe.min.js"
SERIOUS = ("serious", "critical")


def axe(page: Any, state: str, found: dict[str, Any]) -> None:
    """Run axe on the page as it is; record serious/critical violations under `state`."""
    if not AXE.is_file():
        pytest.skip("web/node_modules/axe-core is missing (npm ci in web/)")
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        # evaluate() is not subject to the page's CSP, unlike an injected <script>.
        page.evaluate(AXE.read_text(encoding="utf-8"))
    result = page.evaluate(
        """async () => {
            const r = await axe.run(document, {resultTypes: ['violations']});
            return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ') + ' :: ' + n.failureSummary.split('\\n').slice(0, 3).join(' '))}));
        }"""
    )
    bad = [v for v in result if v["impact"] in SERIOUS]
    if bad:
        found[state] = bad


def report(found: dict[str, Any], name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    Path(ARTIFACTS / f"axe-{name}.json").write_text(json.dumps(found, indent=2))
    summary = {
        state: sorted({f"{v['id']} ({v['impact']})" for v in vs}) for state, vs in found.items()
    }
    assert not found, "serious/critical axe violations:\n" + json.dumps(summary, indent=2)


def rich_conversation(page: Any) -> dict[str, Any]:
    t = time.time() - 100
    messages: dict[str, Any] = {}
    parent = None
    for i in range(6):
        for role, content in (
            (
                "user",
                f"Question {i}: how do tides work?\n\n- [x] read the chart\n- [ ] check the moon",
            ),
            ("assistant", RICH_ANSWER + "\n\n- [x] done\n- [ ] not yet\n\nBad maths: $\\frac{1}{$"),
        ):
            mid = f"m{len(messages)}"
            messages[mid] = {
                "id": mid,
                "parent_id": parent,
                "role": role,
                "content": content,
                "finish_reason": "stop" if role == "assistant" else None,
                "usage": {"prompt_tokens": 10, "completion_tokens": 120}
                if role == "assistant"
                else None,
                "created_at": t + len(messages),
            }
            parent = mid
    conv: dict[str, Any] = api(
        page,
        "POST",
        "/api/conversations/import",
        {"title": "Rich answers", "messages": messages, "current_id": parent},
    )
    return conv


def scroll_through(page: Any, state: str, found: dict[str, Any]) -> None:
    """axe at the top, middle and bottom of the message list (rows are virtualized)."""
    scroller = page.locator(".message-list__scroll")
    for where in ("0", "el.scrollHeight / 2", "el.scrollHeight"):
        scroller.evaluate(f"el => el.scrollTop = {where}")
        page.wait_for_timeout(150)  # let the virtualizer render the rows now in view
        expect(page.locator("article").first).to_be_visible()
        axe(page, f"{state} (scroll {where})", found)


def test_no_serious_violations_desktop(web_stack: Stack, page: Any) -> None:
    found: dict[str, Any] = {}
    page.emulate_media(reduced_motion="reduce")  # no half-faded transitions under the checker
    page.goto(web_stack.url)
    to_sign_up_form(page)
    expect(page.get_by_role("heading", name="Create your account")).to_be_visible()
    axe(page, "sign-up", found)
    page.get_by_label("Username").fill(unique("axe"))
    page.get_by_label("Password").fill("short")
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_role("alert")).to_be_visible()
    axe(page, "sign-up error", found)

    sign_up(page, web_stack.url)
    axe(page, "empty chat", found)

    for i in range(40):
        api(page, "POST", "/api/conversations", {"title": f"Conversation {i} about the sea"})
    conv = rich_conversation(page)
    page.goto(f"{web_stack.url}/c/{conv['id']}")
    expect(page.locator(".katex-display").first).to_be_visible()
    scroll_through(page, "chat with markdown (light)", found)
    axe(page, "long sidebar", found)

    send(page, "One more question")
    wait_reply_done(page)
    axe(page, "after a live reply", found)

    page.get_by_role("button", name="Conversation options").click()
    axe(page, "menu open", found)
    page.get_by_role("menuitem", name="System prompt").click()
    expect(page.get_by_role("dialog", name="System prompt")).to_be_visible()
    axe(page, "system prompt dialog", found)
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Conversation options").click()
    page.get_by_role("menuitem", name="Delete").click()
    expect(page.get_by_role("dialog", name="Delete conversation?")).to_be_visible()
    axe(page, "delete dialog", found)
    page.keyboard.press("Escape")
    page.keyboard.press("Control+/")
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_visible()
    axe(page, "shortcuts dialog", found)
    page.keyboard.press("Escape")

    page.emulate_media(color_scheme="dark")
    scroll_through(page, "chat with markdown (dark)", found)
    page.goto(web_stack.url)
    expect(page.get_by_role("textbox", name="Message")).to_be_visible()
    axe(page, "empty chat (dark)", found)
    report(found, "desktop")


def test_no_serious_violations_phone(web_stack: Stack, browser: Any, watch: Watch) -> None:
    found: dict[str, Any] = {}
    page = new_page(
        browser,
        watch,
        viewport={"width": 390, "height": 844},
        has_touch=True,
        reduced_motion="reduce",
    )
    try:
        sign_up(page, web_stack.url)
        axe(page, "phone empty chat", found)
        conv = rich_conversation(page)
        page.goto(f"{web_stack.url}/c/{conv['id']}")
        expect(page.locator(".katex-display").first).to_be_visible()
        scroll_through(page, "phone chat", found)
        page.get_by_role("button", name="Open sidebar").click()
        expect(page.get_by_role("complementary", name="Sidebar")).to_be_visible()
        page.wait_for_function(
            "() => getComputedStyle(document.querySelector('.shell__sidebar')).transform === 'none'"
        )
        axe(page, "phone drawer open", found)
        page.emulate_media(color_scheme="dark")
        axe(page, "phone drawer open (dark)", found)
    finally:
        page.context.close()
    assert watch.errors == []
    report(found, "phone")
