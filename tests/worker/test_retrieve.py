"""Retrieval for a turn on a real Redis: passages numbered into the prompt,
whole when the files fit, else ranked by meaning and by words together;
only the asker's ready files."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
from redis.asyncio import Redis

from shared.conversation import Attachment, Message
from shared.keys import Keys
from shared.redis_client import make_redis
from tests.support.documents import make_pdf
from tests.worker.test_ingest import add_file, run_burst, settings
from worker.documents.embed import HashEmbedder
from worker.documents.retrieve import DocumentRetriever


class Blind:
    """An embedder that sees no meaning at all: every text the same vector."""

    name, dim = "blind", 64

    async def embed(self, texts: list[str]) -> np.ndarray[Any, Any]:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        out[:, 0] = 1.0
        return out


@pytest.fixture
async def raw(redis_url: str, redis: Redis) -> AsyncIterator[Redis]:
    client = make_redis(redis_url, decode_responses=False)
    try:
        yield client
    finally:
        await client.aclose()


def question(text: str, *file_ids: str) -> Message:
    return Message(
        id="q1",
        role="user",
        content=text,
        attachments=[
            Attachment(file_id=f, name="f", kind="pdf", mime="application/pdf", size=1)
            for f in file_ids
        ],
    )


def count(text: str) -> int:
    return len(text.split())


FILLER = ["Minutes of the meeting were circulated to all members the following week."] * 12


async def test_an_exact_code_is_found_by_its_words_when_meaning_does_not_help(
    redis: Redis, raw: Redis, redis_url: str, keys: Keys
) -> None:
    pages = [FILLER for _ in range(30)]
    pages[17] = ["The generator launch code is QX7731, kept in the red binder."]
    record = await add_file(redis, keys, "alice", "manual.pdf", make_pdf(pages))
    await run_burst(redis, raw, settings(redis_url), Blind())
    docs = DocumentRetriever(redis, keys, Blind())
    got = await docs.context("alice", [question("What is QX7731 for?", record.id)], 400, count)
    assert got.question is not None
    assert got.citations[0].page == 18 and "QX7731" in got.citations[0].text
    assert got.question.index("[1] manual.pdf, page 18:") < got.question.index("Question:")


async def test_a_small_file_goes_in_whole_and_only_the_askers_ready_files_count(
    redis: Redis, raw: Redis, redis_url: str, keys: Keys
) -> None:
    small = await add_file(redis, keys, "alice", "note.pdf", make_pdf([["alpha"], ["beta"]]))
    other = await add_file(redis, keys, "bob", "bob.pdf", make_pdf([["bob's secret"]]))
    await run_burst(redis, raw, settings(redis_url), HashEmbedder(64))
    queued = await add_file(redis, keys, "alice", "later.pdf", make_pdf([["gamma"]]))
    docs = DocumentRetriever(redis, keys, HashEmbedder(64))
    got = await docs.context(
        "alice", [question("summarize", small.id, other.id, queued.id)], 4000, count
    )
    assert [(c.name, c.page, c.text) for c in got.citations] == [
        ("note.pdf", 1, "alpha"),
        ("note.pdf", 2, "beta"),
    ]
    assert got.notice is not None and "later.pdf" in got.notice
    assert got.question is not None and "secret" not in got.question
