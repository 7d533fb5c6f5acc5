"""Documents in the browser (real Chromium, real gateway, turn worker and
ingestion worker): a file dragged onto the composer and one picked with the
attach button each show a chip that goes to ready; the reply to a question
about them shows numbered sources, and a click opens the passage."""

from __future__ import annotations

import struct
import uuid
import zlib
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.documents import make_docx, make_pdf
from tests.support.stack import Stack, running_stack
from tests.web.conftest import ARTIFACTS, MODELS
from tests.web.test_browser_e2e import choose_model, send, sign_up, wait_reply_done

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

expect: Any = pytest.importorskip("playwright.sync_api").expect


@pytest.fixture(scope="module")
def docs_stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # The hash embedder: the browser test is about the page, not ranking.
    env = {"TIDECHAT_KEY_PREFIX": f"tc{uuid.uuid4().hex[:6]}:", "TIDECHAT_EMBEDDER": "hash"}
    with running_stack(
        redis_url, tmp_path_factory.mktemp("docsweb"), models=MODELS + VISION, workers=1, env=env
    ) as stack:
        stack.start_ingest()
        yield stack


VISION = """
[[models]]
id = "seeing"
label = "Scripted (sees images)"
backend = "scripted"
reply_tokens = 12
tokens_per_second = 0
vision = true
"""

def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A solid-colour PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


PNG = png(40, 30, (220, 40, 40))


def drop_file(page: Any, name: str, data: bytes, mime: str) -> None:
    transfer = page.evaluate_handle(
        """([name, bytes, mime]) => {
            const dt = new DataTransfer();
            dt.items.add(new File([new Uint8Array(bytes)], name, { type: mime }));
            return dt;
        }""",
        [name, list(data), mime],
    )
    page.dispatch_event("form.composer", "dragover", {"dataTransfer": transfer})
    page.dispatch_event("form.composer", "drop", {"dataTransfer": transfer})


def test_attach_by_drop_and_button_then_open_a_citation(
    page: Any, docs_stack: Stack, tmp_path: Any
) -> None:
    fact = f"The ferry to Tarnby leaves from pier {uuid.uuid4().hex[:4].upper()}."
    sign_up(page, docs_stack.url)
    drop_file(page, "timetable.pdf", make_pdf([["Harbour timetable"], [fact]]), "application/pdf")
    docx = tmp_path / "notes.docx"
    docx.write_bytes(make_docx(["Meeting notes: the pier is being repainted."]))
    page.locator("[data-testid=file-input]").set_input_files(str(docx))

    chips = page.locator("[data-testid=file-chip]")
    expect(chips).to_have_count(2)
    for i in range(2):
        expect(chips.nth(i)).to_have_attribute("data-phase", "ready", timeout=60_000)
    expect(chips.nth(0)).to_contain_text("timetable.pdf")
    expect(chips.nth(0)).to_contain_text("2 pages")
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator("form.composer").screenshot(path=str(ARTIFACTS / "documents-chips.png"))

    send(page, "Where does the ferry to Tarnby leave from?")
    expect(chips).to_have_count(0)  # sent with the message
    question = page.locator("article[aria-label='You said']").last
    expect(question.locator(".msg-attachment")).to_have_count(2)
    reply = wait_reply_done(page, timeout=60_000)
    citations = reply.locator("[data-testid=citation]")
    expect(citations.first).to_be_visible()
    cited = reply.locator("[data-testid=citation]", has_text="timetable.pdf, page 2")
    cited.click()
    passage = reply.locator("[data-testid=citation-passage]")
    expect(passage).to_contain_text(fact)
    page.screenshot(path=str(ARTIFACTS / "documents-citation.png"), full_page=True)


def test_a_refused_file_says_why_on_its_chip(page: Any, docs_stack: Stack) -> None:
    sign_up(page, docs_stack.url)
    drop_file(page, "invoice.pdf", b"\x7fELF\x02\x01\x01" + bytes(200), "application/pdf")
    chip = page.locator("[data-testid=file-chip]")
    expect(chip).to_have_attribute("data-phase", "failed")
    expect(chip).to_contain_text("not accepted")
    # A failed chip does not hold the message back.
    send(page, "hello")
    expect(page.locator("article[aria-label='You said']")).to_have_count(1)


def test_an_image_waits_for_a_model_that_can_see_it(page: Any, docs_stack: Stack) -> None:
    sign_up(page, docs_stack.url)
    drop_file(page, "dot.png", PNG, "image/png")
    chip = page.locator("[data-testid=file-chip]")
    expect(chip).to_contain_text("This model can't see images")
    page.get_by_role("textbox", name="Message").fill("What colour is this dot?")
    expect(page.get_by_role("button", name="Send message")).to_be_disabled()
    choose_model(page, "Scripted (sees images)")
    expect(chip).to_contain_text("Ready")
    send(page, "What colour is this dot?")
    question = page.locator("article[aria-label='You said']").last
    thumb = question.locator("img.msg-thumb")
    expect(thumb).to_be_visible()
    # The image itself, served to its owner (waited for: the thumbnail loads lazily).
    page.wait_for_function(
        "img => img.complete && img.naturalWidth === 40", arg=thumb.element_handle()
    )
    wait_reply_done(page)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "documents-image.png"))
