"""Issue 16's client findings, each as a user meets it, in a real Chromium
against a real stack: stop while offline, too-long messages, keyboard use,
maths, honest loading and connection states, sign-up and titles, long
messages, the turn id. Accessibility (axe-core) is in test_accessibility.py."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.stack import Stack
from tests.web.conftest import Watch, new_page, own_stack
from tests.web.test_browser_e2e import (
    PASSWORD,
    QUESTION,
    active_conversation_id,
    api,
    choose_model,
    last_reply,
    send,
    shot,
    sign_up,
    unique,
    wait_reply_done,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

expect: Any = pytest.importorskip("playwright.sync_api").expect

UNSENT = "article[aria-label='You said (not sent yet)']"


def imported(page: Any, title: str, messages: list[tuple[str, str]]) -> dict[str, Any]:
    """A conversation made through the import API: (role, content) pairs, one branch."""
    t = time.time() - len(messages)
    body: dict[str, Any] = {"title": title, "messages": {}}
    parent = None
    for i, (role, content) in enumerate(messages):
        mid = f"m{i}"
        body["messages"][mid] = {
            "id": mid,
            "parent_id": parent,
            "role": role,
            "content": content,
            "finish_reason": "stop" if role == "assistant" else None,
            "created_at": t + i,
        }
        parent = mid
    body["current_id"] = parent
    conv: dict[str, Any] = api(page, "POST", "/api/conversations/import", body)
    return conv


def open_conversation(page: Any, base: str, cid: str) -> None:
    page.goto(f"{base}/c/{cid}")
    expect(page.locator("article").first).to_be_visible()


# --- 3. stop cancels a message queued while offline ------------------------------------


def test_stop_cancels_a_message_queued_offline(web_stack: Stack, page: Any) -> None:
    sign_up(page, web_stack.url)
    send(page, "Sent while online")
    wait_reply_done(page)
    cid = active_conversation_id(page)

    page.context.set_offline(True)
    expect(page.get_by_role("status").filter(has_text="Offline")).to_be_visible()
    send(page, "Queued while offline")
    unsent = page.locator(UNSENT)
    expect(unsent).to_contain_text("Waiting for the connection")
    page.get_by_role("button", name="Stop generating").click()
    # Not sent, and nothing lost: the text is kept with a way to send it after all.
    expect(unsent).to_contain_text("Not sent")
    expect(unsent.get_by_role("button", name="Send anyway")).to_be_visible()
    expect(page.get_by_role("button", name="Send message")).to_be_visible()

    page.context.set_offline(False)
    expect(page.get_by_role("status").filter(has_text="Offline")).to_have_count(0)
    send(page, "After coming back")
    expect(last_reply(page)).to_contain_text("You said: After coming back", timeout=20_000)
    wait_reply_done(page)
    stored = [
        m["content"] for m in api(page, "GET", f"/api/conversations/{cid}")["messages"].values()
    ]
    assert "Queued while offline" not in stored, stored
    assert not any(c == "Stopped" for c in stored)
    expect(unsent).to_contain_text("Queued while offline")  # still there to send or discard


# --- 4. a too-long message is recoverable ---------------------------------------------


def test_too_long_message_keeps_its_text_and_shows_a_counter(web_stack: Stack, page: Any) -> None:
    sign_up(page, web_stack.url)
    box = page.get_by_role("textbox", name="Message")
    counter = page.get_by_test_id("composer-counter")

    box.fill("a" * 100)
    expect(counter).to_have_count(0)  # far from the limit: no counter
    box.fill("a" * 31_000)
    expect(counter).to_contain_text("31,000 / 32,000")

    box.fill("x" * 34_000)
    expect(counter).to_contain_text("34,000 / 32,000")
    expect(counter).to_contain_text("Too long to send by 2,000 characters")
    expect(counter).to_have_attribute("data-over", "true")
    expect(page.get_by_role("button", name="Send message")).to_be_disabled()
    box.press("Enter")
    assert len(box.input_value()) == 34_000, "the text must stay in the composer"
    expect(page.locator(UNSENT)).to_have_count(0)
    expect(page.locator(QUESTION)).to_have_count(0)
    shot(page, "too-long")

    # Cut to size, it sends.
    box.fill("x" * 32_000)
    expect(page.get_by_role("button", name="Send message")).to_be_enabled()
    box.press("Enter")
    expect(page.locator(QUESTION)).to_have_count(1)
    wait_reply_done(page)
    assert box.input_value() == ""


# --- 5. keyboard -------------------------------------------------------------------------


def focused_name(page: Any) -> str:
    return str(
        page.evaluate(
            """() => { const e = document.activeElement;
                return e ? (e.getAttribute('aria-label') || e.textContent || e.tagName).trim() : ''; }"""
        )
    )


def test_phone_drawer_takes_focus_and_gives_it_back(
    web_stack: Stack, browser: Any, watch: Watch
) -> None:
    page = new_page(browser, watch, viewport={"width": 700, "height": 800})
    try:
        sign_up(page, web_stack.url)
        opener = page.get_by_role("button", name="Open sidebar")
        opener.focus()
        page.keyboard.press("Enter")
        sidebar = page.get_by_role("complementary", name="Sidebar")
        expect(sidebar).to_be_visible()
        page.wait_for_function(
            "() => document.querySelector('.sidebar').contains(document.activeElement)"
        )
        page.keyboard.press("Escape")
        expect(sidebar).to_be_hidden()
        expect(opener).to_be_focused()
    finally:
        page.context.close()
    assert watch.errors == []


def test_sidebar_keyboard_one_stop_per_conversation_rename_and_skip_link(
    web_stack: Stack, page: Any
) -> None:
    sign_up(page, web_stack.url)
    for i in range(3):
        imported(page, f"Chat number {i}", [("user", "hi"), ("assistant", "hello")])
    page.reload()
    links = page.get_by_role("navigation", name="Conversations").get_by_role("link")
    expect(links).to_have_count(3)

    # The first Tab stop of the page is a skip link that lands in the message box.
    first = page.evaluate(
        """() => [...document.querySelectorAll('a[href], button, input, textarea, select, [tabindex]')]
                 .find(e => e.tabIndex >= 0 && !e.disabled && !e.closest('[inert]'))?.textContent"""
    )
    assert first == "Skip to message box"
    page.get_by_role("button", name="Collapse sidebar").focus()
    page.keyboard.press("Shift+Tab")
    skip = page.get_by_role("link", name="Skip to message box")
    expect(skip).to_be_focused()
    expect(skip).to_be_visible()
    page.keyboard.press("Enter")
    expect(page.get_by_role("textbox", name="Message")).to_be_focused()

    # One Tab stop per conversation: from one link, Tab goes to the next link.
    links.nth(0).focus()
    page.keyboard.press("Tab")
    expect(links.nth(1)).to_be_focused()
    # Its menu is still reachable by keyboard (Shift+F10, as for a context menu).
    page.keyboard.press("Shift+F10")
    expect(page.get_by_role("menuitem", name="Rename")).to_be_focused()
    page.keyboard.press("Escape")
    expect(links.nth(1)).to_be_focused()

    # F2 renames; Escape cancels and gives focus back to the conversation.
    page.keyboard.press("F2")
    title = page.get_by_role("textbox", name="Conversation title")
    expect(title).to_be_focused()
    page.keyboard.press("Escape")
    expect(links.nth(1)).to_be_focused()
    page.keyboard.press("F2")
    page.keyboard.type("Renamed by keyboard")
    page.keyboard.press("Enter")
    renamed = page.get_by_role("link", name="Renamed by keyboard")
    expect(renamed).to_be_focused()


def test_shortcuts_and_their_help(web_stack: Stack, page: Any) -> None:
    sign_up(page, web_stack.url)
    send(page, "Something to leave")
    wait_reply_done(page)
    page.get_by_role("button", name="Copy message").first.focus()

    page.keyboard.press("Control+Shift+O")
    expect(page).to_have_url(f"{web_stack.url}/")
    expect(page.get_by_role("textbox", name="Message")).to_be_focused()

    page.keyboard.press("Control+K")
    expect(page.get_by_role("searchbox", name="Search conversations")).to_be_focused()

    page.keyboard.press("Shift+Escape")
    expect(page.get_by_role("textbox", name="Message")).to_be_focused()

    page.keyboard.press("Control+/")
    help_dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(help_dialog).to_be_visible()
    for text in ("New chat", "Search conversations", "Focus the message box", "Stop the reply"):
        expect(help_dialog).to_contain_text(text)
    shot(page, "shortcuts")
    page.keyboard.press("Escape")
    expect(help_dialog).to_be_hidden()


# --- 7. maths ----------------------------------------------------------------------------


def test_dollar_amounts_are_not_maths_and_one_line_display_maths_is_a_block(
    web_stack: Stack, page: Any
) -> None:
    sign_up(page, web_stack.url)
    answer = (
        "It costs $5 and $10 at the harbour.\n\n"
        "$$E = mc^2$$\n\n"
        "Inline maths still works: $x^2 + y^2$.\n\n"
        "`$PATH` in code stays as it is."
    )
    conv = imported(page, "Prices", [("user", "How much?"), ("assistant", answer)])
    open_conversation(page, web_stack.url, conv["id"])
    body = last_reply(page).locator(".msg-body")
    expect(body).to_contain_text("It costs $5 and $10 at the harbour.")
    expect(body.locator(".katex-display")).to_have_count(1)
    expect(body.locator(".katex-display")).to_contain_text("E")
    expect(body.locator(".katex")).to_have_count(2)  # the block and x^2 + y^2
    expect(body.locator("code")).to_have_text("$PATH")
    shot(page, "maths")


# --- 8. honest states --------------------------------------------------------------------


def test_conversation_that_cannot_load_says_so(web_stack: Stack, page: Any) -> None:
    sign_up(page, web_stack.url)
    conv = imported(page, "Will not load", [("user", "hi"), ("assistant", "hello")])
    page.route(f"**/api/conversations/{conv['id']}", lambda route: route.abort())
    page.goto(f"{web_stack.url}/c/{conv['id']}")
    problem = page.get_by_role("alert").filter(has_text="Couldn't load this conversation")
    expect(problem).to_be_visible()
    expect(page.get_by_role("heading", name="What can I help with?")).to_have_count(0)
    shot(page, "load-failed")
    page.unroute(f"**/api/conversations/{conv['id']}")
    problem.get_by_role("button", name="Try again").click()
    expect(last_reply(page)).to_contain_text("hello")


def test_server_unreachable_is_not_called_offline(web_stack: Stack, page: Any) -> None:
    sign_up(page, web_stack.url)
    page.route_web_socket("**/ws*", lambda ws: ws.close())
    page.reload()
    pill = page.get_by_role("status").filter(has_text="Can't reach the server")
    expect(pill).to_be_visible(timeout=15_000)
    box = page.get_by_role("textbox", name="Message")
    assert "Offline" not in (box.get_attribute("placeholder") or "")
    expect(page.get_by_role("status").filter(has_text="Offline")).to_have_count(0)


def test_a_reply_that_has_not_started_says_it_is_waiting(
    web_stack: Stack, browser: Any, watch: Watch
) -> None:
    page = new_page(browser, watch)
    try:
        sign_up(page, web_stack.url)
        choose_model(page, "patient")
        send(page, "Are you there")
        notice = page.get_by_text("Waiting for the model")
        expect(notice).to_be_visible(timeout=10_000)
        expect(last_reply(page)).to_contain_text("You said: Are you there", timeout=20_000)
        expect(notice).to_have_count(0)
    finally:
        page.context.close()
    assert watch.errors == []


# --- 9. smaller ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fresh_stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A server with no account yet."""
    with own_stack(redis_url, tmp_path_factory, "freshstack") as stack:
        yield stack


def test_fresh_install_opens_on_sign_up_with_per_field_errors(
    fresh_stack: Stack, page: Any
) -> None:
    page.goto(fresh_stack.url)
    expect(page.get_by_role("heading", name="Create your account")).to_be_visible()
    page.get_by_label("Username").fill(unique("first"))
    page.get_by_label("Password").fill("short")
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_role("alert")).to_contain_text("at least 8 characters")
    expect(page.get_by_label("Password")).to_have_attribute("aria-invalid", "true")
    assert page.get_by_label("Username").get_attribute("aria-invalid") in (None, "false")
    shot(page, "signup-error")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_role("textbox", name="Message")).to_be_visible()


def test_titles_show_without_markdown(web_stack: Stack, page: Any) -> None:
    sign_up(page, web_stack.url)
    send(page, "**Bold** ideas for `tidal` _energy_")
    wait_reply_done(page)
    link = page.get_by_role("navigation", name="Conversations").get_by_role("link").first
    expect(link).to_have_text("Bold ideas for tidal energy")
    expect(page.get_by_role("heading", level=1)).to_have_text("Bold ideas for tidal energy")


def test_import_makes_a_named_copy_and_explains_bad_files(
    web_stack: Stack, page: Any, tmp_path: Any
) -> None:
    sign_up(page, web_stack.url)
    conv = imported(page, "Harbour notes", [("user", "hi"), ("assistant", "hello")])
    exported = api(page, "GET", f"/api/conversations/{conv['id']}/export?format=json")
    good = tmp_path / "good.json"
    good.write_text(json.dumps(exported))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"title": "no messages here"}))
    page.reload()

    def import_file(path: Any) -> None:
        page.get_by_role("button", name="Account").click()
        with page.expect_file_chooser() as chooser:
            page.get_by_role("menuitem", name="Import conversation (JSON)").click()
        chooser.value.set_files(str(path))

    import_file(good)
    expect(page.get_by_role("heading", level=1)).to_have_text("Harbour notes (imported)")
    import_file(bad)
    toast = page.get_by_role("alert").filter(has_text="Import failed")
    expect(toast).to_be_visible()
    expect(toast).not_to_contain_text("Field required")
    expect(toast).to_contain_text("not a tidechat conversation export")


def test_system_prompt_editor_is_roomy_shows_when_active_and_adds_no_empty_chat(
    web_stack: Stack, page: Any
) -> None:
    sign_up(page, web_stack.url)
    page.get_by_role("button", name="Conversation options").click()
    page.get_by_role("menuitem", name="System prompt").click()
    editor = page.get_by_role("dialog", name="System prompt").get_by_role("textbox")
    box = editor.bounding_box()
    assert box["height"] >= 100, f"the editor is {box['height']}px tall"
    editor.fill("Answer like a harbour master.\nKeep it short.")
    page.get_by_role("button", name="Save").click()
    indicator = page.get_by_role("button", name="System prompt on")
    expect(indicator).to_be_visible()
    shot(page, "system-prompt-active")
    # Saving on a blank chat does not make an empty conversation.
    expect(page.get_by_role("navigation", name="Conversations").get_by_role("link")).to_have_count(
        0
    )
    assert api(page, "GET", "/api/conversations")["items"] == []
    send(page, "Ahoy")
    wait_reply_done(page)
    cid = active_conversation_id(page)
    view = api(page, "GET", f"/api/conversations/{cid}")
    assert view["system_prompt"] == "Answer like a harbour master.\nKeep it short."
    expect(indicator).to_be_visible()


def test_phone_header_shows_the_whole_model_name_and_the_title(
    web_stack: Stack, browser: Any, watch: Watch
) -> None:
    page = new_page(browser, watch, viewport={"width": 360, "height": 740}, has_touch=True)
    try:
        sign_up(page, web_stack.url)
        send(page, "Short title")
        wait_reply_done(page)
        select = page.get_by_label("Model")
        cut = select.evaluate(
            """el => { const c = document.createElement('canvas').getContext('2d');
                       const s = getComputedStyle(el); c.font = s.font;
                       const text = el.options[el.selectedIndex].text;
                       const room = el.clientWidth - parseFloat(s.paddingLeft) - parseFloat(s.paddingRight);
                       return c.measureText(text).width > room + 1; }"""
        )
        assert not cut, "the model name is cut"
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        expect(page.get_by_role("heading", level=1)).to_have_text("Short title")
        shot(page, "phone-header")
    finally:
        page.context.close()
    assert watch.errors == []


def test_very_long_messages_collapse_with_show_more(web_stack: Stack, page: Any) -> None:
    sign_up(page, web_stack.url)
    long_text = ("All along the harbour wall the tide came in. " * 450).strip()
    assert len(long_text) > 20_000
    conv = imported(page, "Long paste", [("user", long_text), ("assistant", "That is long.")])
    open_conversation(page, web_stack.url, conv["id"])
    question = page.locator(QUESTION).first
    question.scroll_into_view_if_needed()
    height = question.bounding_box()["height"]
    assert height < 800, f"the bubble is {height}px tall"
    more = question.get_by_role("button", name="Show more")
    more.click()
    expect(question.get_by_role("button", name="Show less")).to_be_visible()
    assert question.bounding_box()["height"] > 2_000


# --- 10. the turn id from a reply's menu -------------------------------------------------


def test_reply_menu_copies_its_turn_id(web_stack: Stack, browser: Any, watch: Watch) -> None:
    page = new_page(browser, watch, permissions=["clipboard-read", "clipboard-write"])
    try:
        sign_up(page, web_stack.url)
        send(page, "Which turn is this")
        reply = wait_reply_done(page)
        turn_id = reply.get_attribute("data-message-id")
        reply.get_by_role("button", name="More actions").click()
        page.get_by_role("menuitem", name="Copy turn ID").click()
        expect(page.get_by_role("status").filter(has_text="Turn ID copied")).to_be_visible()
        assert page.evaluate("navigator.clipboard.readText()") == turn_id
    finally:
        page.context.close()
    assert watch.errors == []
