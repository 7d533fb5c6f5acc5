"""The web client in a real headless Chromium against a real stack (gateway
serving web/dist, workers with scripted models, Redis): what a user does, as
a user does it. Screenshots go to test-artifacts/."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.stack import Stack
from tests.web.conftest import ARTIFACTS, Watch, new_page, own_stack

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

expect: Any = pytest.importorskip("playwright.sync_api").expect

PASSWORD = "correct horse battery"
REPLY = "article[aria-label='Assistant said']"
QUESTION = "article[aria-label='You said']"


def unique(name: str) -> str:
    return f"{name}{uuid.uuid4().hex[:6]}"


# --- what a user does, as helpers ----------------------------------------------


def to_sign_up_form(page: Any) -> None:
    """A fresh install opens on sign-up by itself; otherwise switch the form to it."""
    expect(page.locator("main.auth[data-ready]")).to_be_attached()
    if page.get_by_role("heading", name="Welcome back").count():
        page.get_by_role("button", name="Sign up").click()


def sign_up(page: Any, base: str, username: str | None = None) -> str:
    username = username or unique("user")
    page.goto(base)
    to_sign_up_form(page)
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_role("textbox", name="Message")).to_be_visible()
    return username


def send(page: Any, text: str) -> None:
    box = page.get_by_role("textbox", name="Message")
    box.fill(text)
    box.press("Enter")


def last_reply(page: Any) -> Any:
    return page.locator(REPLY).last


def wait_reply_done(page: Any, timeout: float = 20_000) -> Any:
    """Wait until nothing is generating (the Stop button is gone), then the newest reply."""
    expect(page.get_by_role("button", name="Stop generating")).to_have_count(0, timeout=timeout)
    reply = last_reply(page)
    expect(reply).to_have_attribute("data-status", "done", timeout=timeout)
    return reply


def reply_text(reply: Any) -> str:
    return str(reply.locator(".msg-body").inner_text()).strip()


def words(text: str) -> str:
    """Rendered text compared with stored text: whitespace-insensitive."""
    return " ".join(text.split())


def api(page: Any, method: str, path: str, body: Any = None) -> Any:
    """Call the HTTP API from the page, with its session cookie."""
    return page.evaluate(
        """async ([method, path, body]) => {
            const r = await fetch(path, {method, headers: {"content-type": "application/json"},
                                         body: body === null ? undefined : JSON.stringify(body)});
            return r.status === 204 ? null : await r.json();
        }""",
        [method, path, body],
    )


def active_conversation_id(page: Any) -> str:
    match = re.search(r"/c/([A-Za-z0-9_-]+)", page.url)
    assert match, f"no conversation in the address bar: {page.url}"
    return match.group(1)


def choose_model(page: Any, model: str) -> None:
    page.get_by_label("Model").select_option(model)


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"web-{name}.png"))


# --- accounts --------------------------------------------------------------------


def test_sign_up_log_out_and_friendly_errors(web_stack: Stack, page: Any) -> None:
    name = sign_up(page, web_stack.url)
    page.get_by_role("button", name="Account").click()
    page.get_by_role("menuitem", name="Log out").click()
    expect(page.get_by_role("heading", name="Welcome back")).to_be_visible()

    page.get_by_label("Username").fill(name)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")

    page.get_by_role("button", name="Sign up").click()
    page.get_by_label("Username").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_role("alert")).to_contain_text("That username is taken")

    page.get_by_role("button", name="Log in").click()  # back to the log-in form
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("textbox", name="Message")).to_be_visible()


# --- chatting ----------------------------------------------------------------------


def test_streamed_reply_then_stop(web_stack: Stack, page: Any) -> None:
    sign_up(page, web_stack.url)
    choose_model(page, "slow")
    send(page, "Tell me about the harbour at dawn")
    question = page.locator(QUESTION).last
    expect(question).to_have_text("Tell me about the harbour at dawn")
    # The new chat gets its address as soon as the server made the conversation.
    expect(page).to_have_url(re.compile(r"/c/[A-Za-z0-9_-]+$"))

    # Text arrives piece by piece while the reply is streaming.
    reply = last_reply(page)
    expect(reply).to_have_attribute("data-status", "streaming")
    expect(reply).to_contain_text("You said: Tell me about the harbour at dawn")
    early = reply_text(reply)
    expect(reply.locator(".msg-body")).not_to_have_text(early, timeout=5_000)
    assert page.get_by_role("feed").get_attribute("aria-busy") == "true"

    page.get_by_role("button", name="Stop generating").click()
    reply = wait_reply_done(page)
    expect(reply).to_contain_text("Stopped")
    stopped_text = reply_text(reply)
    assert len(stopped_text.split()) < 240, "the reply ran to the end despite Stop"
    expect(page.get_by_test_id("chat-status")).to_have_text("Reply stopped")
    assert page.get_by_role("feed").get_attribute("aria-busy") == "false"

    # What the page shows is what the server stored.
    stored = api(page, "GET", f"/api/conversations/{active_conversation_id(page)}")
    reply_id = reply.get_attribute("data-message-id")
    assert stored["messages"][reply_id]["finish_reason"] == "stopped"
    expected = words(stored["messages"][reply_id]["content"])
    assert words(reply_text(reply)).startswith(expected)
    # The title arrives live and shows in the sidebar.
    expect(page.get_by_role("navigation", name="Conversations")).to_contain_text("harbour")


def test_auto_scroll_stops_when_reading_back(web_stack: Stack, browser: Any, watch: Watch) -> None:
    page = new_page(browser, watch, viewport={"width": 900, "height": 420})
    feed = "document.querySelector('.message-list__scroll')"
    at_bottom = f"() => {{ const el = {feed}; return el.scrollHeight - el.scrollTop - el.clientHeight < 50; }}"
    try:
        sign_up(page, web_stack.url)
        choose_model(page, "slow")
        send(page, "A reply taller than the window")
        # Following the reply while it grows past the window...
        page.wait_for_function(f"() => {feed}?.scrollHeight > {feed}.clientHeight + 150")
        assert page.evaluate(at_bottom)
        jump = page.get_by_role("button", name="Jump to latest message")
        expect(jump).to_have_count(0)
        # ...until the reader scrolls up: then the view stays put.
        page.locator(".message-list__scroll").hover()
        page.mouse.wheel(0, -300)
        expect(jump).to_be_visible()
        held = page.evaluate(f"{feed}.scrollTop")
        height = page.evaluate(f"{feed}.scrollHeight")
        page.wait_for_function(f"() => {feed}.scrollHeight > {height} + 100")
        assert abs(page.evaluate(f"{feed}.scrollTop") - held) < 5
        jump.click()
        page.wait_for_function(at_bottom)
        expect(jump).to_have_count(0)
        wait_reply_done(page)
        assert page.evaluate(at_bottom)
    finally:
        page.context.close()
    assert watch.errors == []


def test_failed_reply_shows_error_with_retry(web_stack: Stack, page: Any) -> None:
    sign_up(page, web_stack.url)
    choose_model(page, "flaky")
    send(page, "Please FAIL-BACKEND now")
    alert = page.locator(".msg").get_by_role("alert")
    expect(alert).to_be_visible(timeout=20_000)
    expect(alert).to_contain_text(re.compile(r"\w"))
    expect(page.get_by_role("button", name="Stop generating")).to_have_count(0)
    alert.get_by_role("button", name="Retry").click()
    expect(page.locator(".msg").get_by_role("alert")).to_be_visible(timeout=20_000)
    # The conversation still works: switch model and ask again.
    choose_model(page, "scripted")
    send(page, "And now something that works")
    expect(wait_reply_done(page)).to_contain_text("And now something that works")


def test_model_and_system_prompt_are_saved(web_stack: Stack, page: Any) -> None:
    sign_up(page, web_stack.url)
    send(page, "Settings test")
    wait_reply_done(page)
    cid = active_conversation_id(page)
    choose_model(page, "slow")
    page.get_by_role("button", name="Conversation options").click()
    page.get_by_role("menuitem", name="System prompt").click()
    dialog = page.get_by_role("dialog", name="System prompt")
    dialog.get_by_role("textbox", name="System prompt").fill("Answer like a sailor.")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_be_hidden()
    deadline = time.monotonic() + 10
    while True:
        stored = api(page, "GET", f"/api/conversations/{cid}")
        if stored["model"] == "slow" and stored["system_prompt"] == "Answer like a sailor.":
            break
        assert time.monotonic() < deadline, stored
        page.wait_for_timeout(100)
    page.reload()
    expect(page.get_by_label("Model")).to_have_value("slow")


def test_regenerate_and_switch_branches(web_stack: Stack, page: Any) -> None:
    sign_up(page, web_stack.url)
    send(page, "Name three sea birds")
    first = wait_reply_done(page)
    first_id = first.get_attribute("data-message-id")
    expect(first).to_contain_text("tokens")  # usage per reply

    first.hover()
    first.get_by_role("button", name="Regenerate reply").click()
    second = wait_reply_done(page)
    expect(second.get_by_role("group", name="Versions")).to_contain_text("2/2")
    second_id = second.get_attribute("data-message-id")
    assert second_id != first_id

    second.get_by_role("button", name="Previous version").click()
    shown = last_reply(page)
    expect(shown).to_have_attribute("data-message-id", first_id)
    expect(shown.get_by_role("group", name="Versions")).to_contain_text("1/2")

    # The choice is the conversation's current_id: a reload shows the same branch.
    cid = active_conversation_id(page)
    deadline = time.monotonic() + 10
    while api(page, "GET", f"/api/conversations/{cid}")["current_id"] != first_id:
        assert time.monotonic() < deadline, "current_id was not PATCHed to the chosen branch"
        page.wait_for_timeout(100)
    page.reload()
    expect(last_reply(page)).to_have_attribute("data-message-id", first_id)


def test_edit_and_resend(web_stack: Stack, page: Any) -> None:
    sign_up(page, web_stack.url)
    send(page, "What is a lagoon")
    wait_reply_done(page)
    question = page.locator(QUESTION).last
    question.hover()
    question.get_by_role("button", name="Edit message").click()
    editor = page.get_by_role("textbox", name="Edit message")
    editor.fill("What is an estuary")
    editor.press("Enter")

    reply = wait_reply_done(page)
    expect(reply).to_contain_text("You said: What is an estuary")
    edited = page.locator(QUESTION).last
    expect(edited).to_have_text(re.compile("What is an estuary"))
    expect(edited.get_by_role("group", name="Versions")).to_contain_text("2/2")

    edited.get_by_role("button", name="Previous version").click()
    expect(page.locator(QUESTION).last).to_contain_text("What is a lagoon")
    expect(last_reply(page)).to_contain_text("You said: What is a lagoon")


def test_rename_search_and_delete(web_stack: Stack, page: Any) -> None:
    sign_up(page, web_stack.url)
    sidebar = page.get_by_role("navigation", name="Conversations")
    for question in ("Zebra crossings explained", "Quantum harbor pilots"):
        page.get_by_role("button", name="New chat").first.click()
        send(page, question)
        wait_reply_done(page)
        expect(sidebar.get_by_role("link", name=re.compile(question.split()[0]))).to_be_visible()

    sidebar.get_by_role("button", name=re.compile("Options for Zebra")).click()
    page.get_by_role("menuitem", name="Rename").click()
    title = page.get_by_role("textbox", name="Conversation title")
    title.fill("Renamed stripes")
    title.press("Enter")
    expect(sidebar.get_by_role("link", name="Renamed stripes")).to_be_visible()

    search = page.get_by_role("searchbox", name="Search conversations")
    search.fill("stripes")  # by title
    results = page.get_by_role("navigation", name="Search results")
    expect(results.get_by_role("link")).to_have_count(1)
    expect(results.get_by_role("link")).to_have_text("Renamed stripes")
    search.fill("pilots")  # by text
    expect(results.get_by_role("link")).to_have_count(1)
    expect(results.get_by_role("link")).to_contain_text("Quantum")
    # The message that matched (the title no longer says it), its matched
    # words marked, the last one by prefix while it is typed.
    search.fill("zebra cross")
    expect(results.get_by_role("link")).to_contain_text("Renamed stripes")
    snippet = results.locator(".conv-item__snippet")
    expect(snippet).to_contain_text("Zebra crossings explained")
    expect(snippet.locator("mark").first).to_have_text(re.compile("^zebra$", re.I))
    expect(snippet.locator("mark").nth(1)).to_have_text(re.compile("^crossings$", re.I))
    shot(page, "search-snippet")
    search.fill("")

    sidebar.get_by_role("button", name="Options for Renamed stripes").click()
    page.get_by_role("menuitem", name="Delete").click()
    dialog = page.get_by_role("dialog", name="Delete conversation?")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Delete").click()
    expect(sidebar.get_by_role("link", name="Renamed stripes")).to_have_count(0)
    listed = api(page, "GET", "/api/conversations")["items"]
    assert [c["title"] for c in listed if "stripes" in c["title"]] == []


def test_sidebar_pages_and_collapses(web_stack: Stack, page: Any) -> None:
    sign_up(page, web_stack.url)
    page.evaluate(
        """async () => { for (let i = 0; i < 60; i++) await fetch('/api/conversations', {
            method: 'POST', headers: {'content-type': 'application/json'},
            body: JSON.stringify({title: `Paged chat ${String(i).padStart(2, '0')}`})}); }"""
    )
    page.reload()
    links = page.get_by_role("navigation", name="Conversations").get_by_role("link")
    expect(links.first).to_have_text("Paged chat 59")  # newest first
    expect(links).to_have_count(50)
    # The next page loads when the end of the list comes into view.
    page.locator(".conv-list").evaluate("el => el.scrollTop = el.scrollHeight")
    expect(links).to_have_count(60)
    expect(links.last).to_have_text("Paged chat 00")

    page.get_by_role("button", name="Collapse sidebar").click()
    sidebar = page.get_by_role("complementary", name="Sidebar")
    expect(sidebar).to_be_hidden()
    page.reload()  # remembered
    expect(page.get_by_role("button", name="Open sidebar")).to_be_visible()
    expect(sidebar).to_be_hidden()
    page.get_by_role("button", name="Open sidebar").click()
    expect(sidebar).to_be_visible()


def test_export_downloads_the_conversation(web_stack: Stack, page: Any, tmp_path: Path) -> None:
    sign_up(page, web_stack.url)
    send(page, "Export this chat about kelp forests")
    reply = wait_reply_done(page)
    text = reply_text(reply)

    for label, suffix in (("Export as Markdown", ".md"), ("Export as JSON", ".json")):
        page.get_by_role("button", name="Conversation options").click()
        with page.expect_download() as info:
            page.get_by_role("menuitem", name=label).click()
        download = info.value
        assert download.suggested_filename.endswith(suffix)
        saved = tmp_path / download.suggested_filename
        download.save_as(saved)
        content = saved.read_text(encoding="utf-8")
        assert "Export this chat about kelp forests" in content
        if suffix == ".json":
            data = json.loads(content)
            assert words(text) in {words(m["content"]) for m in data["messages"].values()}
        else:
            assert words(text)[:60] in words(content)

    # ...and a JSON export imports back as a new conversation.
    page.get_by_role("button", name="Account").click()
    with page.expect_file_chooser() as chooser:
        page.get_by_role("menuitem", name="Import conversation (JSON)").click()
    chooser.value.set_files(str(tmp_path / download.suggested_filename))
    expect(page.get_by_role("status").filter(has_text="Conversation imported.")).to_be_visible()
    expect(last_reply(page)).to_contain_text("You said: Export this chat about kelp forests")


def test_reload_mid_reply_completes_without_loss_or_doubling(web_stack: Stack, page: Any) -> None:
    sign_up(page, web_stack.url)
    choose_model(page, "slow")
    send(page, "Reload me in the middle please")
    reply = last_reply(page)
    expect(reply).to_contain_text("You said: Reload me in the middle please")
    expect(reply).to_have_attribute("data-status", "streaming")
    page.wait_for_function(
        "sel => document.querySelector(sel)?.innerText.split(/\\s+/).length > 40",
        arg=f"{REPLY}[data-status=streaming] .msg-body",
    )
    before = words(reply_text(reply))

    page.reload()
    reply = last_reply(page)
    # The reply is still there after the reload, from its first word, and carries on.
    expect(reply).to_contain_text("You said: Reload me in the middle please", timeout=5_000)
    assert words(reply_text(reply)).startswith(before[:80])
    reply = wait_reply_done(page)

    stored = api(page, "GET", f"/api/conversations/{active_conversation_id(page)}")
    content = stored["messages"][reply.get_attribute("data-message-id")]["content"]
    assert words(reply_text(reply)) == words(content)
    assert len(content.split()) == 240  # nothing lost, nothing doubled
    assert page.locator(REPLY).count() == 1


# --- safety --------------------------------------------------------------------------

XSS = [
    "<img src=x onerror=alert(1)>",
    "[click me](javascript:alert(1))",
    '<a href="javascript:alert(2)">html link</a>',
    "<svg onload=alert(3)></svg>",
    "<script>alert(4)</script>",
    "[data](data:text/html;base64,PHNjcmlwdD5hbGVydCg1KTwvc2NyaXB0Pg==)",
]


def test_xss_payloads_render_inert(web_stack: Stack, page: Any, watch: Watch) -> None:
    sign_up(page, web_stack.url)
    send(page, " ".join(XSS[:2]))
    wait_reply_done(page)
    expect(page.locator(QUESTION).last).to_contain_text("<img src=x onerror=alert(1)>")

    # A reply carrying every payload (as a model could write it), opened from an import.
    t = time.time()
    conv = api(
        page,
        "POST",
        "/api/conversations/import",
        {
            "title": "XSS",
            "messages": {
                "q": {"id": "q", "role": "user", "content": "show me", "created_at": t},
                "a": {
                    "id": "a",
                    "parent_id": "q",
                    "role": "assistant",
                    "content": "\n\n".join(XSS),
                    "finish_reason": "stop",
                    "created_at": t + 1,
                },
            },
        },
    )
    page.goto(f"{web_stack.url}/c/{conv['id']}")
    body = last_reply(page)
    expect(body).to_contain_text("<img src=x onerror=alert(1)>")
    expect(body).to_contain_text("<script>alert(4)</script>")
    body.get_by_text("click me").click()
    body.get_by_text("html link").click()
    body.get_by_text("data", exact=True).click()
    page.wait_for_timeout(300)

    messages = page.locator(".msg-body, .msg-bubble")
    assert messages.locator("img, script, svg, iframe, object, embed").count() == 0
    hrefs = [a.get_attribute("href") or "" for a in messages.locator("a").all()]
    assert not [h for h in hrefs if re.match(r"\s*(javascript|data|vbscript):", h, re.I)]
    assert watch.dialogs == []
    assert page.url.startswith(web_stack.url)


# --- keyboard, small screens, long conversations --------------------------------------


def focused(page: Any) -> dict[str, Any]:
    """The focused element's name, and whether a focus ring shows on it or its box."""
    return dict(
        page.evaluate(
            """() => {
                const el = document.activeElement;
                const label = el.getAttribute('aria-label')
                    || (el.labels && el.labels[0] ? el.labels[0].innerText.trim() : '')
                    || el.textContent.trim();
                let ring = false;
                for (let x = el, i = 0; x && i < 3; x = x.parentElement, i++) {
                    if (getComputedStyle(x).outlineStyle !== 'none') ring = true;
                }
                return {label, ring};
            }"""
        )
    )


def tab_to(page: Any, label: str, limit: int = 60, backwards: bool = False) -> dict[str, Any]:
    """Press Tab until the focused element is called `label`; its focus ring must show."""
    for _ in range(limit):
        page.keyboard.press("Shift+Tab" if backwards else "Tab")
        now = focused(page)
        if now["label"] == label:
            assert now["ring"], f"no visible focus on {label}"
            return now
    raise AssertionError(f"never reached {label!r} with Tab")


def test_everything_by_keyboard(web_stack: Stack, page: Any) -> None:
    page.goto(web_stack.url)
    expect(page.locator("main.auth[data-ready]")).to_be_attached()
    if page.get_by_role("heading", name="Welcome back").count():
        tab_to(page, "Sign up")
        page.keyboard.press("Enter")
    tab_to(page, "Username", backwards=True)
    page.keyboard.type(unique("kb"))
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    box = page.get_by_role("textbox", name="Message")
    expect(box).to_be_focused()

    # Shift+Enter is a new line, Enter sends.
    page.keyboard.type("First line")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("second line")
    page.keyboard.press("Enter")
    expect(page.locator(QUESTION).last).to_have_text("First line\nsecond line")
    wait_reply_done(page)

    # Esc stops a reply.
    tab_to(page, "Model", backwards=True)
    page.keyboard.press("ArrowDown")  # the slow model
    expect(page.get_by_label("Model")).to_have_value("slow")
    tab_to(page, "Message")
    page.keyboard.type("A long answer please")
    page.keyboard.press("Enter")
    expect(last_reply(page)).to_have_attribute("data-status", "streaming")
    page.keyboard.press("Escape")
    expect(wait_reply_done(page)).to_contain_text("Stopped")

    # Regenerate and switch versions (Esc at once: it stops the reply as soon as it starts).
    tab_to(page, "Regenerate reply", backwards=True)
    page.keyboard.press("Enter")
    page.keyboard.press("Escape")
    reply = wait_reply_done(page)
    expect(reply).to_contain_text("Stopped")
    expect(reply.get_by_role("group", name="Versions")).to_contain_text("2/2")
    page.get_by_role("textbox", name="Message").focus()
    tab_to(page, "Previous version", backwards=True)
    page.keyboard.press("Enter")
    expect(last_reply(page).get_by_role("group", name="Versions")).to_contain_text("1/2")

    # The conversation menu: arrows move, Enter picks; the dialog traps focus and Esc cancels.
    tab_to(page, "Conversation options")
    page.keyboard.press("Enter")
    page.keyboard.press("End")
    expect(page.get_by_role("menuitem", name="Delete")).to_be_focused()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Delete conversation?")
    expect(dialog).to_be_visible()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    tab_to(page, "Conversation options", backwards=True)
    page.keyboard.press("Enter")
    page.keyboard.press("End")
    page.keyboard.press("Enter")
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{web_stack.url}/")
    expect(page.get_by_role("heading", name="What can I help with?")).to_be_visible()


def test_phone_width_360(web_stack: Stack, browser: Any, watch: Watch) -> None:
    page = new_page(browser, watch, viewport={"width": 360, "height": 740}, has_touch=True)
    try:
        sign_up(page, web_stack.url)
        send(page, "Is this usable on a small phone")
        wait_reply_done(page)
        overflow = page.evaluate("document.documentElement.scrollWidth")
        assert overflow <= 360, f"the page scrolls sideways ({overflow}px wide)"
        composer = page.get_by_role("textbox", name="Message").bounding_box()
        assert composer["x"] >= 0 and composer["x"] + composer["width"] <= 360

        page.get_by_role("button", name="Open sidebar").click()
        drawer = page.get_by_role("navigation", name="Conversations")
        expect(drawer.get_by_role("link")).to_have_count(1)
        page.wait_for_function(
            "() => getComputedStyle(document.querySelector('.shell__sidebar')).transform === 'none'"
        )
        shot(page, "phone-drawer")
        page.get_by_role("button", name="New chat").first.click()
        expect(page.get_by_role("heading", name="What can I help with?")).to_be_visible()
        expect(drawer).to_be_hidden()  # choosing closes the drawer
        page.get_by_role("button", name="Open sidebar").click()
        drawer.get_by_role("link").first.click()
        expect(last_reply(page)).to_contain_text("You said: Is this usable")
        expect(drawer).to_be_hidden()
        shot(page, "phone-chat")
    finally:
        page.context.close()
    assert watch.errors == []


def long_conversation(n: int) -> dict[str, Any]:
    t = time.time() - n
    messages: dict[str, Any] = {}
    parent = None
    for i in range(n):
        mid = f"m{i}"
        user = i % 2 == 0
        content = (
            f"Question {i}: how do tides work?"
            if user
            else f"Answer {i}.\n\n```python\nprint({i})\n```\n\n| a | b |\n|---|---|\n| {i} | $x^{i % 9}$ |"
        )
        messages[mid] = {
            "id": mid,
            "parent_id": parent,
            "role": "user" if user else "assistant",
            "content": content,
            "finish_reason": None if user else "stop",
            "created_at": t + i,
        }
        parent = mid
    return {"title": "Two thousand messages", "messages": messages, "current_id": parent}


def test_two_thousand_messages_open_in_under_a_second(web_stack: Stack, page: Any) -> None:
    sign_up(page, web_stack.url)
    conv = api(page, "POST", "/api/conversations/import", long_conversation(2000))
    assert conv["message_count"] == 2000
    page.reload()
    link = page.get_by_role("link", name="Two thousand messages")
    expect(link).to_be_visible()

    # Timed in the page: from the click to the frame that shows the newest message.
    opened = (
        page.evaluate(
            """(id) => new Promise((resolve) => {
                const t0 = performance.now();
                document.querySelector(`a[href="/c/${id}"]`).click();
                const check = () => [...document.querySelectorAll('.msg-body')]
                    .some((e) => e.textContent.includes('Answer 1999.'))
                    ? resolve(performance.now() - t0) : requestAnimationFrame(check);
                requestAnimationFrame(check);
            })""",
            conv["id"],
        )
        / 1000
    )
    rendered = page.locator("article.msg").count()
    print(
        f"\n2,000-message conversation opened in {opened * 1000:.0f} ms"
        f" ({rendered} rows in the DOM)"
    )
    assert opened < 1.0
    assert rendered < 60, "off-screen messages are rendered"

    started = time.perf_counter()
    page.goto(f"{web_stack.url}/c/{conv['id']}")
    expect(page.get_by_text("Answer 1999.")).to_be_visible()
    print(f"...and as a fresh page load in {(time.perf_counter() - started) * 1000:.0f} ms")

    # Scrolling to the top reaches the first message (older pages are fetched
    # as the top comes near; the list is virtual).
    scroller = page.locator(".message-list__scroll")
    for _ in range(100):
        if page.get_by_text("Question 0: how do tides work?").count():
            break
        scroller.evaluate("el => el.scrollTop = 0")
        page.wait_for_timeout(150)
    expect(page.get_by_text("Question 0: how do tides work?")).to_be_visible()
    expect(page.get_by_role("button", name="Jump to latest message")).to_be_visible()
    page.get_by_role("button", name="Jump to latest message").click()
    expect(page.get_by_text("Answer 1999.")).to_be_visible()


# --- screenshots ------------------------------------------------------------------------

RICH_ANSWER = r"""Tides come from the **Moon's gravity** pulling harder on the near side of the Earth than on the far side.

1. The bulge facing the Moon is pulled *towards* it.
2. The far-side bulge is left behind.

$$
F_{tide} \approx \frac{2 G M r}{d^3}
$$

| Tide | When | Range |
|---|---|---|
| Spring | Sun and Moon aligned | Largest |
| Neap | At right angles | Smallest |

```python
import math

def tide_height(hours: float, amplitude: float = 1.2) -> float:
    return amplitude * math.cos(2 * math.pi * hours / 12.42)
```

More on [NOAA's tides page](https://oceanservice.noaa.gov/education/tutorial_tides/)."""


def test_screenshots_light_dark_phone(web_stack: Stack, page: Any) -> None:
    page.goto(web_stack.url)
    expect(page.get_by_role("heading", name="Welcome back")).to_be_visible()
    shot(page, "login")
    sign_up(page, web_stack.url)
    shot(page, "new-chat")
    t = time.time()
    conv = api(
        page,
        "POST",
        "/api/conversations/import",
        {
            "title": "How ocean tides work",
            "current_id": "a2",
            "messages": {
                "u1": {
                    "id": "u1",
                    "role": "user",
                    "content": "How do tides work?",
                    "created_at": t,
                },
                "a1": {
                    "id": "a1",
                    "parent_id": "u1",
                    "role": "assistant",
                    "content": "Mostly the Moon.",
                    "finish_reason": "stop",
                    "created_at": t + 1,
                },
                "a2": {
                    "id": "a2",
                    "parent_id": "u1",
                    "role": "assistant",
                    "content": RICH_ANSWER,
                    "finish_reason": "stop",
                    "usage": {"prompt_tokens": 12, "completion_tokens": 161},
                    "created_at": t + 2,
                },
            },
        },
    )
    send(page, "Hello! What can you do?")
    wait_reply_done(page)
    page.goto(f"{web_stack.url}/c/{conv['id']}")
    expect(page.locator(".katex-display")).to_be_visible()
    page.locator(".message-list__scroll").evaluate("el => el.scrollTop = 0")
    shot(page, "chat-light")
    page.emulate_media(color_scheme="dark")
    shot(page, "chat-dark")
    page.set_viewport_size({"width": 390, "height": 844})
    expect(page.get_by_role("complementary", name="Sidebar")).to_be_hidden()
    shot(page, "phone-dark")
    for name in ("login", "new-chat", "chat-light", "chat-dark", "phone-dark"):
        assert (ARTIFACTS / f"web-{name}.png").stat().st_size > 3_000


# --- a gateway that goes away and comes back; sign-up closed ---------------------------


@pytest.fixture(scope="module")
def closed_stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # Its own key prefix: sign-up is closed after the first account, so start with none.
    with own_stack(
        redis_url, tmp_path_factory, "closedstack", TIDECHAT_SIGNUP_OPEN="false"
    ) as stack:
        yield stack


def test_closed_sign_up_and_reconnect_with_outbox(closed_stack: Stack, page: Any) -> None:
    stack = closed_stack
    admin = unique("admin")
    r = httpx.post(
        stack.url + "/api/auth/signup", json={"username": admin, "password": PASSWORD}, timeout=10
    )
    if r.status_code == 403:
        pytest.skip("the shared Redis already has accounts, so no first (admin) sign-up here")
    r.raise_for_status()

    page.goto(stack.url)
    # Sign-up is closed: the page says so and offers no sign-up form.
    expect(page.locator("main.auth[data-ready]")).to_be_attached()
    expect(page.get_by_test_id("signup-note")).to_contain_text("Sign-up is closed")
    expect(page.get_by_role("button", name="Sign up")).to_have_count(0)

    page.get_by_label("Username").fill(admin)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    send(page, "Before the outage")
    wait_reply_done(page)

    # The gateway goes away: the page says so and counts down to the next try.
    port = stack.ports[0]
    stack.gateways[0].stop()
    status = page.get_by_role("status").filter(has_text=re.compile("Reconnecting|Offline"))
    expect(status).to_be_visible(timeout=10_000)
    shot(page, "reconnecting")
    # Typed while offline: kept in the outbox, sent when the connection is back.
    send(page, "Typed during the outage")
    unsent = page.locator("article[aria-label='You said (not sent yet)']")
    expect(unsent).to_contain_text("Typed during the outage")
    expect(unsent).to_contain_text("Waiting for the connection")

    stack.gateways[0] = stack.start_gateway(port=port)
    stack.ports.pop()  # start_gateway appended the same port again
    stack.wait_ready()
    expect(status).to_have_count(0, timeout=40_000)
    reply = wait_reply_done(page, timeout=30_000)
    expect(reply).to_contain_text("You said: Typed during the outage")
    assert page.locator(QUESTION).count() == 2
