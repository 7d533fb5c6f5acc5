"""The first five minutes with the bundled model, in a real Chromium: the
embedded default catalog (no models file) with the real Gemma 3 270M, and a
Hugging Face model offered beside it (a token is set; it is never called).

The empty chat suggests what the chosen model can do, and a question to the
bundled model gets an answer, not the question back. Screenshots go to
test-artifacts/.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.models_file import DEFAULT_LOCAL_MODEL_ID
from shared.suggestions import GENERAL, LOCAL
from tests.support.stack import Stack, running_stack
from tests.web.test_browser_e2e import (
    QUESTION,
    choose_model,
    reply_text,
    shot,
    sign_up,
    wait_reply_done,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

expect: Any = pytest.importorskip("playwright.sync_api").expect
pytest.importorskip("llama_cpp")


@pytest.fixture(scope="module")
def bundled_stack(
    redis_url: str, bundled_gguf: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    env = {
        "TIDECHAT_MODELS": "",  # the embedded default, as `tidechat up` runs it
        "HF_TOKEN": "hf_test_token_never_used",
        # Where the bundled model was already assembled for this session.
        "TIDECHAT_DATA_DIR": str(bundled_gguf.parent.parent),
    }
    with running_stack(
        redis_url, tmp_path_factory.mktemp("bundled-stack"), workers=1, env=env
    ) as stack:
        yield stack


def suggestion_prompts(page: Any) -> list[str]:
    cards = page.get_by_role("list", name="Suggestions").locator(".suggestion__prompt")
    return [str(t) for t in cards.all_inner_texts()]


@pytest.mark.timeout(300)
def test_the_bundled_model_suggests_short_questions_and_answers_them(
    bundled_stack: Stack, page: Any
) -> None:
    sign_up(page, bundled_stack.url)
    expect(page.get_by_label("Model")).to_have_value(DEFAULT_LOCAL_MODEL_ID)
    suggestions = page.get_by_role("list", name="Suggestions")
    expect(suggestions).to_contain_text(LOCAL[0].prompt)
    assert suggestion_prompts(page) == [s.prompt for s in LOCAL]
    shot(page, "suggestions-local")

    # A remote model is a capable assistant: the longer tasks.
    choose_model(page, "llama-3.1-8b")
    expect(suggestions).to_contain_text(GENERAL[0].prompt)
    assert suggestion_prompts(page) == [s.prompt for s in GENERAL]
    shot(page, "suggestions-remote")

    choose_model(page, DEFAULT_LOCAL_MODEL_ID)
    question = "What is the capital of France?"
    suggestions.get_by_role("button").filter(has_text=question).click()
    expect(page.locator(QUESTION).last).to_have_text(question)
    reply = wait_reply_done(page, timeout=120_000)
    text = reply_text(reply)
    shot(page, "bundled-answer")

    assert text, "an answer"
    assert not text.lower().startswith("what is the capital"), f"the question came back: {text!r}"
    assert "User:" not in text, text
    # The model's own title would be an answer ("Paris"): the question's first words.
    expect(page.get_by_role("navigation", name="Conversations")).to_contain_text(
        "What is the capital of France"
    )
