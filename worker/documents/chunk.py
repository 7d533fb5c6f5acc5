"""Cutting a file's text into passages: windows of words with overlap, never
across a page, numbered in reading order. The same text always gives the
same chunks, which is what makes indexing a file again idempotent (chunk
``n`` of a file has a fixed key) and lets a worker that takes a file over
continue where the last one stopped."""

from __future__ import annotations

import re
from dataclasses import dataclass

from shared.keys import CHUNK_OVERLAP_WORDS, CHUNK_WORDS

_SPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Chunk:
    n: int
    #: 1-based page number; 0 for a format without pages.
    page: int
    text: str


def chunk_pages(
    pages: list[str],
    *,
    paged: bool,
    words: int = CHUNK_WORDS,
    overlap: int = CHUNK_OVERLAP_WORDS,
) -> list[Chunk]:
    if not 0 <= overlap < words:
        raise ValueError("overlap must be smaller than the chunk")
    out: list[Chunk] = []
    step = words - overlap
    for index, text in enumerate(pages):
        tokens = _SPACE.split(text.strip())
        if tokens == [""]:
            continue
        page = index + 1 if paged else 0
        start = 0
        while True:
            piece = tokens[start : start + words]
            out.append(Chunk(len(out), page, " ".join(piece)))
            if start + words >= len(tokens):
                break
            start += step
    return out
