"""Browser fixtures: Debian's Chromium driven by Playwright (never its own
browser download) against a real stack: gateway serving web/dist, workers with
scripted models, real Redis."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.stack import Stack, running_stack

ROOT = Path(__file__).resolve().parents[2]
WEB_DIST = ROOT / "web" / "dist"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("TIDECHAT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

#: fast: answers at once. slow: long enough to stop, reload or watch mid-reply.
#: flaky: fails (a 400 from the "backend") on questions containing FAIL-BACKEND.
#: patient: a long pause before the first token, as a busy local model keeps a turn waiting.
MODELS = """
[[models]]
id = "scripted"
label = "Scripted (fast)"
backend = "scripted"
reply_tokens = 48
tokens_per_second = 0

[[models]]
id = "slow"
label = "Scripted (slow)"
backend = "scripted"
reply_tokens = 240
tokens_per_second = 40

[[models]]
id = "flaky"
label = "Scripted (fails on FAIL-BACKEND)"
backend = "scripted"
reply_tokens = 24
tokens_per_second = 0
fail_on = "FAIL-BACKEND"
fail_status = 400

[[models]]
id = "patient"
label = "Scripted (patient)"
backend = "scripted"
reply_tokens = 12
tokens_per_second = 0
first_token_delay = 6
"""


def _missing(what: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{what} (CI must provide it)")
    pytest.skip(what)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        _missing("Debian's chromium is not installed (apt-get install chromium)")
    if not (WEB_DIST / "index.html").is_file():
        _missing("web/dist is not built (cd web && npm ci && npm run build)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def web_stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(
        redis_url, tmp_path_factory.mktemp("webstack"), models=MODELS, workers=2
    ) as stack:
        yield stack


@contextmanager
def own_stack(
    redis_url: str, tmp_path_factory: pytest.TempPathFactory, name: str, **env: str
) -> Iterator[Stack]:
    """A deployment of its own: one worker and a fresh key prefix, so it starts with no account."""
    with running_stack(
        redis_url,
        tmp_path_factory.mktemp(name),
        models=MODELS,
        workers=1,
        env={"TIDECHAT_KEY_PREFIX": f"tc{uuid.uuid4().hex[:6]}:", **env},
    ) as stack:
        yield stack


@dataclass
class Watch:
    """What a page did that a user would notice: JS dialogs and uncaught
    errors; and anything the Content-Security-Policy refused (counted as an
    error: the gateway's CSP must let the client work, and a refusal means
    something broke or something was injected)."""

    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    csp_violations: list[str] = field(default_factory=list)


#: Reports every CSP violation in the console, including those Chromium
#: would only report to a report-uri.
_CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (e) => {
  console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || "inline"}`);
});
"""


@pytest.fixture
def watch() -> Watch:
    return Watch()


def new_page(browser: Any, watch: Watch, **context_args: Any) -> Any:
    options: dict[str, Any] = {
        "viewport": {"width": 1280, "height": 800},
        "accept_downloads": True,
        "color_scheme": "light",
        **context_args,
    }
    context = browser.new_context(**options)
    context.set_default_timeout(15_000)
    page = context.new_page()

    def on_dialog(dialog: Any) -> None:
        watch.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def on_console(message: Any) -> None:
        text = message.text
        if message.type == "error" and (
            "Content Security Policy" in text or text.startswith("CSP violation")
        ):
            watch.csp_violations.append(text)
            watch.errors.append(text)

    page.on("dialog", on_dialog)
    page.on("pageerror", lambda exc: watch.errors.append(str(exc)))
    page.on("console", on_console)
    page.add_init_script(_CSP_LISTENER)
    return page


@pytest.fixture
def page(browser: Any, watch: Watch) -> Iterator[Any]:
    p = new_page(browser, watch)
    try:
        yield p
    finally:
        p.context.close()
    assert watch.errors == [], f"uncaught errors in the page: {watch.errors}"
