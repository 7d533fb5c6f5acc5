"""Conversation titles: a short model call after the first reply."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re

from shared.store import TITLE_MAX_CHARS
from worker.backends.base import Backend, GenerationRequest
from worker.errors import TurnError

log = logging.getLogger(__name__)

#: A title call that takes longer than this is abandoned (the first words of
#: the question are used instead): a title is not worth keeping a slot busy.
TITLE_TIMEOUT_S = 15.0
TITLE_MAX_TOKENS = 24
#: A title longer than this is a sentence the model wrote instead (a base
#: model answers the question: "The sky is blue because the sun and ...").
_MAX_TITLE_WORDS = 8

_PROMPT = (
    "Write a title of at most six words for a chat that starts with the "
    "question below. Reply with the title only, no quotes.\n\nQuestion: {question}"
)


def clean_title(text: str) -> str | None:
    """The first non-empty line, without quotes, markdown or trailing dots;
    None when that is no usable title (see ``usable_title``)."""
    for line in text.splitlines():
        line = re.sub(r"^(title\s*:\s*)", "", line.strip(), flags=re.IGNORECASE)
        marks = " \t\"'`*#_"
        line = line.strip(marks).rstrip(".:;,!").strip(marks)
        if line:
            return line if usable_title(line) else None
    return None


def usable_title(title: str) -> bool:
    """A heading, not a sentence: a few words, one phrase, no speaker label."""
    return (
        len(title) <= TITLE_MAX_CHARS
        and len(title.split()) <= _MAX_TITLE_WORDS
        and not re.search(r"[.!?]\s", title)
        and not re.match(r"(?i)(user|assistant|question|answer)\s*:", title)
    )


async def make_title(backend: Backend, question: str, answer: str) -> str | None:
    """A title from the model, or None when it fails or says nothing useful."""
    request = GenerationRequest(
        messages=[{"role": "user", "content": _PROMPT.format(question=question[:1000])}],
        max_tokens=TITLE_MAX_TOKENS,
        temperature=0.2,
    )
    parts: list[str] = []

    async def collect() -> None:
        stream = backend.stream(request)
        try:
            async for delta in stream:
                parts.append(delta.text)
        finally:
            with contextlib.suppress(Exception):
                await stream.aclose()  # type: ignore[attr-defined]

    try:
        await asyncio.wait_for(collect(), TITLE_TIMEOUT_S)
    except (TurnError, TimeoutError) as exc:
        log.info("title call failed (%s); using the first words", exc)
        return None
    return clean_title("".join(parts))
