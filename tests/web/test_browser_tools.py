"""Tools in Chromium (issue 15): a tool turn with an approval, the steps
shown collapsed in the reply and expandable, also after a reload. A real
stack, the SDK's MCP server and a scripted tool-calling upstream."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.support.stack import Stack, running_stack
from tests.support.tool_servers import MCP_TOKEN, MCP_TOKEN_ENV, ToolServers, tool_servers
from tests.web.conftest import ARTIFACTS
from tests.web.test_browser_e2e import send, sign_up, wait_reply_done

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tools_stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    directory = tmp_path_factory.mktemp("browser-tools")
    with tool_servers(directory / "servers") as servers:
        env = {
            "TIDECHAT_TOOLS": str(servers.tools_file(directory, extra='ask = ["slow"]')),
            MCP_TOKEN_ENV: MCP_TOKEN,
        }
        with running_stack(
            redis_url, directory, models=servers.models_file_entry(), workers=1, env=env
        ) as stack:
            yield stack


def test_a_tool_turn_with_an_approval(tools_stack: Stack, page: Any) -> None:
    sign_up(page, tools_stack.url)
    # The picker says the model has tools, and which servers.
    badge = page.get_by_role("note", name="Tools: calc")
    expect(badge).to_be_visible(timeout=30_000)
    expect(badge).to_have_text("calc")
    expect(page.get_by_role("option", name="tooly · tools")).to_have_count(1)
    send(page, '[[steps: calc__add {"a":1,"b":2} | calc__slow {"seconds":0}]]')

    approval = page.get_by_role("group", name="Approve calc/slow")
    expect(approval).to_be_visible(timeout=30_000)
    expect(approval).to_contain_text('{"seconds":0}')
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "tools-approval.png"))
    approval.get_by_role("button", name="Allow").click()

    reply = wait_reply_done(page, timeout=30_000)
    expect(reply.locator(".md")).to_have_text("answer: 3 / slept")
    expect(page.get_by_role("group", name="Approve calc/slow")).to_have_count(0)
    steps = reply.locator(".tool-steps__list")
    expect(steps.locator("summary").first).to_have_text("Used 2 tool calls")
    calls = steps.locator("li.tool-step")
    expect(calls.first).to_be_hidden()  # collapsed
    steps.locator("summary").first.click()
    expect(calls).to_have_count(2)
    expect(calls.nth(0)).to_contain_text("calc/add")
    expect(calls.nth(0)).to_contain_text("done")
    calls.nth(0).locator("summary").click()
    expect(calls.nth(0).locator("pre").nth(1)).to_have_text("3")
    page.screenshot(path=str(ARTIFACTS / "tools-reply.png"))

    # From the stored reply after a reload: the same steps.
    page.reload()
    reply = wait_reply_done(page, timeout=30_000)
    expect(reply.locator(".tool-steps__list summary").first).to_have_text("Used 2 tool calls")
