"""Knowledge collections in the browser (real Chromium, real gateway, turn
worker and ingestion worker): the Knowledge page, reached from the account
menu, creates, renames and deletes (after a confirm) a collection and
uploads a file into it with a progress chip; in the chat, the conversation
menu attaches it, the header shows it, and a reply cites its file."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.stack import Stack, running_stack
from tests.web.conftest import ARTIFACTS, MODELS
from tests.web.test_browser_e2e import send, sign_up, wait_reply_done

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

expect: Any = pytest.importorskip("playwright.sync_api").expect


@pytest.fixture(scope="module")
def knowledge_stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # The hash embedder: this is about the page, not ranking.
    env = {"TIDECHAT_KEY_PREFIX": f"tc{uuid.uuid4().hex[:6]}:", "TIDECHAT_EMBEDDER": "hash"}
    with running_stack(
        redis_url, tmp_path_factory.mktemp("knowweb"), models=MODELS, workers=1, env=env
    ) as stack:
        stack.start_ingest()
        yield stack


def test_knowledge_page_and_attaching_a_collection(
    page: Any, knowledge_stack: Stack, tmp_path: Any
) -> None:
    fact = f"The spare key to the server room is kept by Ysolde {uuid.uuid4().hex[:4]}."
    user = sign_up(page, knowledge_stack.url)
    page.get_by_role("button", name=f"{user}, account").click()
    page.get_by_role("menuitem", name="Knowledge").click()
    expect(page.get_by_role("heading", name="Knowledge")).to_be_visible()

    page.get_by_role("button", name="New collection").click()
    page.get_by_label("Name", exact=True).fill("Handbook draft")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", name="Handbook draft")).to_be_visible()
    page.get_by_role("button", name="Rename").click()
    page.get_by_label("Name", exact=True).fill("Team handbook")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", name="Team handbook")).to_be_visible()

    handbook = tmp_path / "handbook.md"
    handbook.write_text(f"# Team handbook\n\nHolidays are booked with the office.\n\n{fact}\n")
    page.locator("[data-testid=collection-file-input]").set_input_files(str(handbook))
    row = page.locator("[data-testid=collection-file]", has_text="handbook.md")
    expect(row).to_have_attribute("data-status", "ready", timeout=60_000)
    expect(page.get_by_role("navigation", name="Collections")).to_contain_text("1 file")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "knowledge-page.png"), full_page=True)

    # In the chat: attach it to a conversation, from the conversation's menu.
    page.get_by_role("link", name="Back to chat").click()
    send(page, "hello")
    wait_reply_done(page)
    page.get_by_role("button", name="Conversation options").click()
    page.get_by_role("menuitem", name="Knowledge collections").click()
    page.get_by_role("checkbox", name="Team handbook").check()
    chip = page.locator("[data-testid=attached-collections]")
    expect(chip).to_contain_text("Team handbook")
    page.get_by_role("button", name="Done").click()
    send(page, "Who keeps the spare key to the server room?")
    reply = wait_reply_done(page, timeout=60_000)
    cited = reply.locator("[data-testid=citation]", has_text="handbook.md")
    expect(cited.first).to_be_visible()
    cited.first.click()
    expect(reply.locator("[data-testid=citation-passage]")).to_contain_text("Ysolde")
    page.screenshot(path=str(ARTIFACTS / "knowledge-attached.png"), full_page=True)

    # Deleting asks first, then the collection and its file are gone.
    page.goto(knowledge_stack.url + "/knowledge")
    page.get_by_role("button", name="Delete").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(page.get_by_text("No collections yet")).to_be_visible()
    with knowledge_stack.client() as anonymous:
        assert anonymous.get("/api/collections").status_code == 401


def test_an_edit_keeps_its_files_and_an_import_shows_missing_ones(
    page: Any, knowledge_stack: Stack, tmp_path: Any
) -> None:
    sign_up(page, knowledge_stack.url)
    note = tmp_path / "note.txt"
    note.write_text("The lighthouse keeper's dog is called Brine.")
    page.locator("[data-testid=file-input]").set_input_files(str(note))
    chip = page.locator("[data-testid=file-chip]")
    expect(chip).to_have_attribute("data-phase", "ready", timeout=60_000)
    send(page, "What is the dog called?")
    wait_reply_done(page)

    # Editing the question: its file comes along as a chip, and stays on the new version.
    question = page.locator("article[aria-label='You said']").last
    question.hover()
    question.get_by_role("button", name="Edit message").click()
    expect(page.locator("[data-testid=edit-file-chip]")).to_contain_text("note.txt")
    page.get_by_role("textbox", name="Edit message").fill("And the dog's name, again?")
    page.get_by_role("button", name="Send", exact=True).click()
    wait_reply_done(page)
    edited = page.locator("article[aria-label='You said']").last
    expect(edited).to_contain_text("And the dog's name, again?")
    expect(edited.locator(".msg-attachment")).to_contain_text("note.txt")

    # An export from elsewhere whose file is not here: the text, and a missing chip.
    mid = uuid.uuid4().hex
    export = {
        "title": "From another server",
        "messages": {
            mid: {
                "id": mid,
                "role": "user",
                "content": "Summarize the attached report.",
                "attachments": [
                    {
                        "file_id": uuid.uuid4().hex,
                        "name": "report.pdf",
                        "kind": "pdf",
                        "mime": "application/pdf",
                        "size": 1234,
                    }
                ],
            }
        },
        "current_id": mid,
    }
    exported = tmp_path / "export.json"
    exported.write_text(json.dumps(export))
    page.get_by_role("button", name=re.compile(r", account$")).click()
    page.get_by_role("menuitem", name="Import conversation (JSON)").click()
    page.get_by_label("Conversation export to import").set_input_files(str(exported))
    missing = page.locator("[data-testid=missing-attachment]")
    expect(missing).to_contain_text("report.pdf")
    expect(missing).to_contain_text("missing")
    expect(page.locator("article[aria-label='You said']").last).to_contain_text(
        "Summarize the attached report."
    )
    page.screenshot(path=str(ARTIFACTS / "knowledge-missing-file.png"), full_page=True)
