"""The web client under the gateway's security headers, in Chromium: it works
under the strict CSP (math, highlighted code, the socket) and any violation
is caught; its socket URL carries no session id; the Account dialog changes
the password and ends other sign-ins, which reaches a browser signed in
elsewhere at once. Screenshot: test-artifacts/web-account.png."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.support.stack import Stack
from tests.web.conftest import ARTIFACTS, Watch, new_page
from tests.web.test_browser_e2e import (
    PASSWORD,
    RICH_ANSWER,
    api,
    send,
    sign_up,
    wait_reply_done,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

expect: Any = pytest.importorskip("playwright.sync_api").expect


def test_the_client_works_under_the_csp_and_a_violation_is_caught(
    web_stack: Stack, page: Any, watch: Watch
) -> None:
    sockets: list[str] = []
    protocols: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    page.on(
        "request",
        lambda r: (
            protocols.append(r.headers.get("sec-websocket-protocol", ""))
            if r.url.startswith("ws")
            else None
        ),
    )
    response = page.goto(web_stack.url)
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    sign_up(page, web_stack.url)
    send(page, "Hello under a strict policy")
    wait_reply_done(page)
    t = time.time()
    conv = api(
        page,
        "POST",
        "/api/conversations/import",
        {
            "title": "Math and code",
            "messages": {
                "q": {"id": "q", "role": "user", "content": "show me", "created_at": t},
                "a": {
                    "id": "a",
                    "parent_id": "q",
                    "role": "assistant",
                    "content": RICH_ANSWER,
                    "finish_reason": "stop",
                    "created_at": t + 1,
                },
            },
        },
    )
    page.goto(f"{web_stack.url}/c/{conv['id']}")
    expect(page.locator(".katex-display")).to_be_visible()
    # KaTeX laid out (its fonts and element styles allowed), code highlighted.
    assert page.locator(".katex-display .katex-html").bounding_box()["height"] > 10
    assert page.locator("pre code span[class*='hljs']").count() > 0
    assert page.evaluate("document.fonts.check('16px KaTeX_Main')")
    assert watch.csp_violations == []
    # The session id travels in the subprotocol, never in the URL.
    assert sockets and all(url.endswith("/ws") for url in sockets), sockets

    # And the watch would have seen a violation: an injected inline script is refused.
    page.evaluate(
        """() => {
            const s = document.createElement('script');
            s.textContent = 'window.__injected = true';
            document.body.appendChild(s);
        }"""
    )
    deadline = time.monotonic() + 5
    while not watch.csp_violations and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    assert watch.csp_violations, "an inline script ran unnoticed"
    assert page.evaluate("window.__injected") is None
    watch.errors.clear()  # expected here; any other test fails on one


def log_in(page: Any, base: str, username: str, password: str = PASSWORD) -> None:
    page.goto(base)
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("textbox", name="Message")).to_be_visible()


def test_the_account_dialog_changes_the_password_and_ends_other_sign_ins(
    web_stack: Stack, page: Any, browser: Any
) -> None:
    name = sign_up(page, web_stack.url)
    elsewhere_watch = Watch()
    elsewhere = new_page(browser, elsewhere_watch)
    try:
        log_in(elsewhere, web_stack.url, name)
        r = httpx.post(
            web_stack.url + "/api/auth/login",
            json={"username": name, "password": PASSWORD},
            headers={"User-Agent": "curl/8.5.0"},
        )
        script_token = r.json()["token"]

        page.get_by_role("button", name="Account").click()
        page.get_by_role("menuitem", name="Account and sign-ins").click()
        dialog = page.get_by_role("dialog", name="Account")
        signins = dialog.get_by_role("list", name="Sign-ins").get_by_role("listitem")
        expect(signins).to_have_count(3)
        expect(dialog.get_by_text("This browser")).to_be_visible()
        expect(dialog.get_by_text("A script")).to_be_visible()
        ARTIFACTS.mkdir(exist_ok=True)
        dialog.locator(".dialog__panel").screenshot(path=str(ARTIFACTS / "web-account.png"))

        # End the script's sign-in: its token stops working at once.
        dialog.get_by_role("button", name="Sign out A script", exact=False).click()
        expect(signins).to_have_count(2)
        me = httpx.get(
            web_stack.url + "/api/auth/me", headers={"Authorization": f"Bearer {script_token}"}
        )
        assert me.status_code == 401

        dialog.get_by_label("Current password").fill("not my password")
        dialog.get_by_label("New password", exact=True).fill("a brand new password")
        dialog.get_by_label("Repeat new password").fill("a brand new password")
        dialog.get_by_role("button", name="Change password").click()
        expect(dialog.get_by_role("alert")).to_have_text("The current password is wrong.")
        dialog.get_by_label("Current password").fill(PASSWORD)
        dialog.get_by_role("button", name="Change password").click()
        expect(dialog.get_by_role("status")).to_contain_text("Password changed")
        expect(signins).to_have_count(1)

        # The other browser was signed out by the change: its socket closed
        # (4401) and it shows the sign-in form, without a reload.
        expect(elsewhere.get_by_role("heading", name="Welcome back")).to_be_visible(timeout=10_000)
        # This one carries on.
        dialog.get_by_role("button", name="Close").click()
        send(page, "still signed in here")
        wait_reply_done(page)
        assert elsewhere_watch.errors == []
    finally:
        elsewhere.context.close()
