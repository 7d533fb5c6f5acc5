"""Documents in a turn: the passages of the branch's attachments that go into
the prompt, numbered, and the citations the reply keeps.

Every file attached to a user message on the branch stays available to
later turns, and so does every file of the knowledge collections the
conversation attaches. Files that fit the documents' share of the context budget go in
whole (so "summarize this" works), page by page; otherwise the passages
that best answer the question go in, best first, while they fit: the nearest
by meaning (KNN) and the best by its words (BM25), fused by rank; both queries
on the owner's chunks of those files only (the owner inside the query). The question
follows the numbered sources, so a small model reads them before it answers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from redis.asyncio import Redis

from shared.collections import CollectionStore
from shared.conversation import Citation, Message
from shared.files import FileRecord, FileStore
from shared.keys import (
    CHUNK_OVERLAP_WORDS,
    CHUNK_WORDS,
    DOCUMENT_BUDGET_SHARE,
    RETRIEVE_K,
    Keys,
)
from worker.documents.embed import Embedder
from worker.documents.index import Passage, fuse, keyword, nearest, whole

log = logging.getLogger(__name__)

#: Citation text kept per source: enough to show the passage when clicked.
CITATION_CHARS = 2_000
#: Words a chunk holds at most (``CHUNK_WORDS``) cost about this many tokens
#: each: the estimate that decides, before reading a file, whether it could
#: go in whole.
TOKENS_PER_WORD = 1.4


@dataclass(slots=True)
class DocumentContext:
    #: The question with the numbered sources before it; None: no documents.
    question: str | None = None
    citations: list[Citation] = field(default_factory=list)
    #: Said to the user when an attachment was not used (still being read).
    notice: str | None = None


def attached_file_ids(branch: list[Message]) -> list[str]:
    seen: dict[str, None] = {}
    for message in branch:
        if message.role == "user":
            for a in message.attachments:
                if a.kind != "image":
                    seen[a.file_id] = None
    return list(seen)


def _dedupe_overlap(passages: list[Passage]) -> list[Passage]:
    """Consecutive chunks of one page repeat ``CHUNK_OVERLAP_WORDS`` words:
    cut them when a whole file is shown."""
    out: list[Passage] = []
    for p in passages:
        prev = out[-1] if out else None
        if prev and prev.file_id == p.file_id and prev.page == p.page and p.n == prev.n + 1:
            words = p.text.split(" ")
            out[-1] = Passage(
                prev.file_id,
                prev.n + 1,
                prev.page,
                prev.text + " " + " ".join(words[CHUNK_OVERLAP_WORDS:]),
            )
        else:
            out.append(p)
    return out


class DocumentRetriever:
    def __init__(self, redis: Redis, keys: Keys, embedder: Embedder) -> None:
        self.redis = redis
        self.keys = keys
        self.files = FileStore(redis, keys)
        self.collections = CollectionStore(redis, keys)
        self.embedder = embedder

    async def context(
        self,
        owner: str,
        branch: list[Message],
        budget_tokens: int,
        count: Callable[[str], int],
        conversation_id: str | None = None,
    ) -> DocumentContext:
        """``conversation_id``: its attached knowledge collections' files are
        searched too (``shared/collections.py``), the owner's only."""
        ids = attached_file_ids(branch)
        if conversation_id is not None:
            extra = await self.collections.conversation_file_ids(owner, conversation_id)
            ids = list(dict.fromkeys([*ids, *extra]))
        if not ids:
            return DocumentContext()
        records: dict[str, FileRecord] = {}
        waiting: list[str] = []
        for record in await self.files.many(ids):
            if record is None or record.owner != owner:
                continue  # deleted since (or never the caller's): nothing of it is used
            if record.status == "ready":
                records[record.id] = record
            elif record.status != "failed":
                waiting.append(record.name)
        notice = f"Not used, still being read: {', '.join(waiting)}." if waiting else None
        if not records:
            return DocumentContext(notice=notice)
        share = int(budget_tokens * DOCUMENT_BUDGET_SHARE)
        question = branch[-1].content
        passages = await self._whole(owner, records, share, count)
        if passages is None:
            passages = await self._nearest(owner, records, question, share, count)
        if not passages:
            return DocumentContext(notice=notice)
        citations: list[Citation] = []
        blocks: list[str] = []
        for i, p in enumerate(passages, start=1):
            name = records[p.file_id].name
            where = f"{name}, page {p.page}" if p.page else name
            blocks.append(f"[{i}] {where}:\n{p.text}")
            citations.append(
                Citation(
                    n=i, file_id=p.file_id, name=name, page=p.page, text=p.text[:CITATION_CHARS]
                )
            )
        text = (
            "Sources from the attached documents (cite them by number, like [1]):\n\n"
            + "\n\n".join(blocks)
            + "\n\nQuestion: "
            + question
        )
        return DocumentContext(question=text, citations=citations, notice=notice)

    async def _whole(
        self,
        owner: str,
        records: dict[str, FileRecord],
        share: int,
        count: Callable[[str], int],
    ) -> list[Passage] | None:
        estimate = sum(r.chunks_total for r in records.values()) * (
            (CHUNK_WORDS - CHUNK_OVERLAP_WORDS) * TOKENS_PER_WORD
        )
        if estimate > share * 2:
            return None  # far too long: do not even read it
        out: list[Passage] = []
        for record in records.values():
            chunks = await whole(
                self.redis, self.keys, owner=owner, file_id=record.id, count=record.chunks_total
            )
            out.extend(_dedupe_overlap(chunks))
        used = sum(count(p.text) + 8 for p in out)
        return out if used <= share else None

    async def _nearest(
        self,
        owner: str,
        records: dict[str, FileRecord],
        question: str,
        share: int,
        count: Callable[[str], int],
    ) -> list[Passage]:
        vector = (await self.embedder.embed([question]))[0]
        ids = list(records)
        by_meaning = await nearest(
            self.redis, self.keys, owner=owner, file_ids=ids, vector=vector, k=RETRIEVE_K
        )
        by_words = await keyword(
            self.redis, self.keys, owner=owner, file_ids=ids, text=question, k=RETRIEVE_K
        )
        found = fuse(by_meaning, by_words, RETRIEVE_K)
        out: list[Passage] = []
        used = 0
        for p in found:
            cost = count(p.text) + 8
            if used + cost > share:
                break
            out.append(p)
            used += cost
        return out
