"""The admin console in a real Chromium against a real stack of its own (the
first account is the admin): what an admin does, and what the people they
act on see in their own browser. Screenshots go to test-artifacts/; the
console's light/dark, desktop/phone shots also to docs/ (``DOCS_SHOTS=1``)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.stack import Stack
from tests.web.conftest import ROOT, Watch, new_page, own_stack
from tests.web.test_browser_e2e import (
    PASSWORD,
    api,
    send,
    shot,
    sign_up,
    unique,
    wait_reply_done,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

expect: Any = pytest.importorskip("playwright.sync_api").expect


@pytest.fixture(scope="module")
def admin_stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with own_stack(redis_url, tmp_path_factory, "adminweb") as stack:
        yield stack


@pytest.fixture(scope="module")
def admin_name(admin_stack: Stack) -> str:
    name = unique("root")
    admin_stack.signup(name, PASSWORD)  # the first account: the admin
    return name


def log_in(page: Any, base: str, name: str, path: str = "/") -> None:
    page.goto(base + path)
    expect(page.locator("main.auth[data-ready]")).to_be_attached()
    page.get_by_label("Username").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


@pytest.fixture
def admin_page(browser: Any, admin_stack: Stack, admin_name: str) -> Iterator[Any]:
    w = Watch()
    page = new_page(browser, w)
    log_in(page, admin_stack.url, admin_name, "/admin")
    expect(page.get_by_role("heading", name="Admin console")).to_be_visible()
    try:
        yield page
    finally:
        page.context.close()
    assert w.errors == [], w.errors


def user_action(admin_page: Any, username: str, action: str) -> None:
    admin_page.get_by_role("tab", name="Users").click()
    row = admin_page.locator(f"tr[data-user='{username}']")
    expect(row).to_be_visible()
    row.get_by_role("button", name=f"Actions for {username}").click()
    admin_page.get_by_role("menuitem", name=action).click()


def test_a_disabled_users_open_chat_is_signed_out_at_once(
    admin_stack: Stack, admin_page: Any, browser: Any, watch: Watch
) -> None:
    user = new_page(browser, watch)
    name = sign_up(user, admin_stack.url)
    send(user, "hello before being disabled")
    wait_reply_done(user)
    admin_page.reload()
    user_action(admin_page, name, "Disable")
    clicked = time.monotonic()
    expect(user.get_by_role("heading", name="Welcome back")).to_be_visible(timeout=5_000)
    took = time.monotonic() - clicked
    print(f"signed out {took:.2f} s after the admin clicked Disable")
    assert took < 3, took  # the issue asks for a second; the shared machine gets slack
    expect(user.get_by_test_id("signed-out-reason")).to_contain_text(
        "an admin disabled your account"
    )
    shot(user, "admin-signed-out-notice")
    expect(admin_page.locator(f"tr[data-user='{name}']")).to_contain_text("disabled")
    shot(admin_page, "admin-disabled-row")
    user.get_by_label("Username").fill(name)
    user.get_by_label("Password").fill(PASSWORD)
    user.get_by_role("button", name="Log in").click()
    expect(user.get_by_role("alert")).to_contain_text("disabled by an admin")
    shot(user, "admin-disabled-login")
    user.context.close()


def test_closing_signup_removes_the_form(
    admin_stack: Stack, admin_page: Any, browser: Any, watch: Watch
) -> None:
    visitor = new_page(browser, watch)
    try:
        admin_page.get_by_role("radio", name="Closed").check()
        expect(admin_page.get_by_text("Sign-up is now closed.")).to_be_visible()
        visitor.goto(admin_stack.url)
        expect(visitor.locator("main.auth[data-ready]")).to_be_attached()
        expect(visitor.get_by_test_id("signup-note")).to_contain_text("Sign-up is closed")
        expect(visitor.get_by_role("button", name="Sign up")).to_have_count(0)
        shot(visitor, "admin-signup-closed")
        admin_page.get_by_role("radio", name="Invite only").check()
        expect(admin_page.get_by_text("Sign-up is now invite only.")).to_be_visible()
        visitor.reload()
        expect(visitor.get_by_test_id("signup-note")).to_contain_text("invite link")
        expect(visitor.get_by_role("button", name="Sign up")).to_have_count(0)
    finally:
        admin_page.get_by_role("radio", name="Open").check()
        expect(admin_page.get_by_text("Sign-up is now open.")).to_be_visible()
        visitor.context.close()
    visitor = new_page(browser, watch)
    visitor.goto(admin_stack.url)
    expect(visitor.locator("main.auth[data-ready]")).to_be_attached()
    expect(visitor.get_by_role("button", name="Sign up")).to_be_visible()
    visitor.context.close()


def test_a_model_kept_to_a_group_leaves_a_non_members_picker(
    admin_stack: Stack, admin_page: Any, browser: Any, watch: Watch
) -> None:
    outsider = new_page(browser, watch)
    sign_up(outsider, admin_stack.url)
    expect(outsider.get_by_label("Model").locator("option[value='slow']")).to_have_count(1)
    group = unique("team")
    admin_page.get_by_role("tab", name="Groups & models").click()
    admin_page.get_by_label("New group name").fill(group)
    admin_page.get_by_role("button", name="Add group").click()
    box = admin_page.get_by_role("checkbox", name=f"{group} may use Scripted (slow)")
    box.check()
    expect(admin_page.get_by_text(f"Scripted (slow): {group} only.")).to_be_visible()
    expect(admin_page.locator("li[data-model='slow']")).to_contain_text(f"— {group}")
    shot(admin_page, "admin-model-access")
    try:
        outsider.reload()
        expect(outsider.get_by_role("textbox", name="Message")).to_be_visible()
        picker = outsider.get_by_label("Model")
        expect(picker.locator("option[value='scripted']")).to_have_count(1)
        expect(picker.locator("option[value='slow']")).to_have_count(0)
        shot(outsider, "admin-picker-without-slow")
    finally:
        box.uncheck()
        expect(admin_page.get_by_text("Scripted (slow): everyone.")).to_be_visible()
        outsider.context.close()


def test_a_quota_set_in_the_console_stops_the_user_with_a_clear_message(
    admin_stack: Stack, admin_page: Any, browser: Any, watch: Watch
) -> None:
    user = new_page(browser, watch)
    name = sign_up(user, admin_stack.url)
    admin_page.reload()
    user_action(admin_page, name, "Quotas…")
    admin_page.get_by_label("Messages per day").fill("1")
    admin_page.get_by_role("button", name="Save quotas").click()
    expect(admin_page.get_by_role("dialog")).to_have_count(0)
    send(user, "my one message today")
    wait_reply_done(user)
    expect(user.get_by_test_id("quota-notice")).to_contain_text("No messages left today")
    send(user, "one more?")
    expect(user.get_by_text("quota of 1 messages", exact=False).first).to_be_visible()
    shot(user, "admin-quota-hit")
    quota = api(user, "GET", "/api/quota")
    assert quota["turns"] == {"used": 1, "limit": 1}
    user.context.close()


def test_an_invite_link_made_in_the_console_signs_someone_up_once(
    admin_stack: Stack, admin_page: Any, browser: Any, watch: Watch
) -> None:
    name = unique("invited")
    admin_page.get_by_role("button", name="New user").click()
    dialog = admin_page.get_by_role("dialog")
    dialog.get_by_role("radio", name="Invite link").check()
    dialog.get_by_label("Username (optional").fill(name)
    dialog.get_by_role("button", name="Create invite link").click()
    link = admin_page.get_by_test_id("shown-secret").inner_text().strip()
    assert "/invite#" in link
    shot(admin_page, "admin-invite-link")
    guest = new_page(browser, watch)
    guest.goto(link)
    expect(guest.get_by_role("heading", name="Create your account")).to_be_visible()
    expect(guest.get_by_label("Username")).to_have_value(name)
    guest.get_by_label("Password").fill(PASSWORD)
    guest.get_by_role("button", name="Sign up").click()
    expect(guest.get_by_role("textbox", name="Message")).to_be_visible()
    assert "#" not in guest.url  # the token leaves the address bar
    guest.context.close()
    again = new_page(browser, watch)
    again.goto(link)
    expect(again.get_by_role("alert")).to_contain_text("does not work any more")
    again.context.close()


def test_deleting_a_user_asks_first_and_says_it_cannot_be_undone(
    admin_stack: Stack, admin_page: Any
) -> None:
    name = unique("leaver")
    admin_stack.signup(name)
    admin_page.reload()
    user_action(admin_page, name, "Delete…")
    dialog = admin_page.get_by_role("dialog")
    expect(dialog).to_contain_text("cannot be undone")
    shot(admin_page, "admin-delete-confirm")
    dialog.get_by_role("button", name="Cancel").click()
    expect(admin_page.locator(f"tr[data-user='{name}']")).to_be_visible()
    user_action(admin_page, name, "Delete…")
    admin_page.get_by_role("dialog").get_by_role("button", name="Delete for good").click()
    expect(admin_page.locator(f"tr[data-user='{name}']")).to_have_count(0)


@pytest.fixture(scope="module")
def seeded(admin_stack: Stack, admin_name: str) -> None:
    """A few people, a group and some usage, so the console's pictures show something."""
    import asyncio
    import concurrent.futures

    import httpx

    from tests.support.ws import ChatSocket

    async def chat(token: str, n: int) -> None:
        sock = await ChatSocket.connect(admin_stack.ws_url, token)
        await sock.wait_type("hello")
        for i in range(n):
            await sock.send({"type": "message", "content": f"question {i}"})
            await sock.wait_type("stream_end", timeout=30)
        await sock.close()

    root = httpx.post(
        admin_stack.url + "/api/auth/login", json={"username": admin_name, "password": PASSWORD}
    ).json()["token"]
    with admin_stack.client(root) as http:
        http.post("/api/admin/groups", json={"name": "research", "description": "lab"})
        for name, turns in (("ada", 3), ("grace", 1), ("linus", 0)):
            token = admin_stack.signup(unique(name))
            uid = httpx.get(
                admin_stack.url + "/api/auth/me", headers={"Authorization": f"Bearer {token}"}
            ).json()["id"]
            if name == "ada":
                http.put(f"/api/admin/groups/research/members/{uid}")
            # In a thread of its own: the browser's fixtures may already run an
            # event loop in this one (asyncio.run would refuse).
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                pool.submit(asyncio.run, chat(token, turns)).result()
            if name == "linus":
                http.patch(f"/api/admin/users/{uid}", json={"disabled": True})
        http.post("/api/admin/users", json={"username": unique("newcomer")})


@pytest.mark.usefixtures("seeded")
@pytest.mark.parametrize(
    ("scheme", "width", "height"),
    [("light", 1280, 800), ("dark", 1280, 800), ("light", 390, 844), ("dark", 390, 844)],
)
def test_console_screenshots(
    admin_stack: Stack, admin_name: str, browser: Any, scheme: str, width: int, height: int
) -> None:
    w = Watch()
    page = new_page(browser, w, color_scheme=scheme, viewport={"width": width, "height": height})
    log_in(page, admin_stack.url, admin_name, "/admin")
    expect(page.locator("tr[data-user]").first).to_be_visible()
    page.evaluate("document.activeElement && document.activeElement.blur()")
    form = "phone" if width < 600 else "desktop"
    name = f"admin-console-{form}-{scheme}"
    shot(page, name)
    if os.environ.get("DOCS_SHOTS"):
        page.screenshot(path=str(ROOT / "docs" / f"{name}.png"))
    page.get_by_role("tab", name="Usage").click()
    expect(page.locator(".admin__chart svg")).to_be_visible()
    shot(page, f"{name}-usage")
    for tab, ready in (
        ("Groups & models", "li[data-model]"),
        ("Audit log", "tr[data-kind]"),
        ("Retention", "tr[data-group]"),
    ):
        page.get_by_role("tab", name=tab).click()
        expect(page.locator(ready).first).to_be_visible()
        shot(page, f"{name}-{tab.split()[0].lower()}")
    page.context.close()
    assert w.errors == [], w.errors
