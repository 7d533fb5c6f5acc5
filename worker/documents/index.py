"""The chunk index on Redis's query engine, and the only queries on it.

Each chunk is a hash (``chunk(fid, n)``): ``owner`` and ``file`` as TAGs,
``page`` and ``n`` as numbers, ``text`` as full text (keyword search, fused
with the vector ranking), ``vec`` as an HNSW vector (FLOAT32, cosine). Every
query names the owner inside the query (``@owner:{$owner}``, a parameter),
so another user's chunks are never candidates: they are not filtered out
afterwards, they are never found.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import ResponseError

from shared.keys import Keys

log = logging.getLogger(__name__)

#: Characters a TAG query must escape (RediSearch's tokenizer separators).
_TAG_SPECIAL = set(",.<>{}[]\"':;!@#$%^&*()-+=~|/\\ ")


def _command(redis: Redis) -> Callable[..., Awaitable[Any]]:
    """redis-py leaves ``execute_command`` unannotated (see ``shared/rjson.py``)."""
    return cast(Callable[..., Awaitable[Any]], redis.execute_command)


def tag(value: str) -> str:
    return "".join("\\" + c if c in _TAG_SPECIAL else c for c in value)


@dataclass(frozen=True, slots=True)
class Passage:
    file_id: str
    n: int
    page: int
    text: str
    #: Cosine distance (0: same direction); 0 for passages taken whole.
    distance: float = 0.0


async def ensure_index(redis: Redis, keys: Keys, dim: int) -> None:
    """Create the index if it does not exist (every ingestion worker and
    every turn worker may; the second one's error is expected)."""
    try:
        await _command(redis)(
            "FT.CREATE",
            keys.chunk_index(),
            "ON",
            "HASH",
            "PREFIX",
            "1",
            keys.chunk_prefix(),
            "SCHEMA",
            "owner",
            "TAG",
            "file",
            "TAG",
            "page",
            "NUMERIC",
            "n",
            "NUMERIC",
            "text",
            "TEXT",
            "vec",
            "VECTOR",
            "HNSW",
            "6",
            "TYPE",
            "FLOAT32",
            "DIM",
            str(dim),
            "DISTANCE_METRIC",
            "COSINE",
        )
        log.info("created the chunk index %s (dim %d)", keys.chunk_index(), dim)
    except ResponseError as exc:
        if "already exists" not in str(exc).lower():
            raise


def queue_chunk(
    pipe: Pipeline,
    keys: Keys,
    *,
    file_id: str,
    owner: str,
    n: int,
    page: int,
    text: str,
    vector: np.ndarray[Any, Any],
) -> None:
    pipe.hset(
        keys.chunk(file_id, n),
        mapping={
            "owner": owner,
            "file": file_id,
            "n": n,
            "page": page,
            "text": text,
            "vec": np.asarray(vector, dtype=np.float32).tobytes(),
        },
    )


def _parse(reply: Any) -> list[Passage]:
    """Our clients speak RESP3: the reply is a map (docs/redis.md)."""
    out: list[Passage] = []
    for row in reply["results"]:
        fields = row["extra_attributes"]
        out.append(
            Passage(
                file_id=fields["file"],
                n=int(fields["n"]),
                page=int(fields["page"]),
                text=fields["text"],
                distance=float(fields.get("dist", 0.0)),
            )
        )
    return out


async def _search(
    redis: Redis,
    keys: Keys,
    *,
    owner: str,
    file_ids: list[str],
    k: int,
    match: str = "",
    knn: bytes | None = None,
) -> list[Passage]:
    """The one query on the index: ``owner``'s chunks of ``file_ids`` (the
    owner a parameter inside the query: no escaping, no injection; file ids
    are ours, hex, and escaped all the same), narrowed by ``match`` (a text
    clause) and ranked by nearness to ``knn`` (a vector) when given."""
    scope = f"@owner:{{$owner}} @file:{{{'|'.join(tag(f) for f in file_ids)}}}{match}"
    params: list[Any] = ["owner", owner]
    fields = ["file", "n", "page", "text"]
    extra: list[Any] = []
    if knn is not None:
        scope = f"({scope})=>[KNN {int(k)} @vec $v AS dist]"
        params += ["v", knn]
        fields.append("dist")
        extra = ["SORTBY", "dist"]
    reply = await _command(redis)(
        "FT.SEARCH",
        keys.chunk_index(),
        scope,
        "PARAMS",
        str(len(params)),
        *params,
        *extra,
        "RETURN",
        str(len(fields)),
        *fields,
        "LIMIT",
        "0",
        str(int(k)),
        "DIALECT",
        "2",
    )
    return _parse(reply)


async def nearest(
    redis: Redis,
    keys: Keys,
    *,
    owner: str,
    file_ids: list[str],
    vector: np.ndarray[Any, Any],
    k: int,
) -> list[Passage]:
    """The ``k`` chunks of ``owner``'s files ``file_ids`` closest to ``vector``."""
    if not file_ids:
        return []
    knn = np.asarray(vector, dtype=np.float32).tobytes()
    return await _search(redis, keys, owner=owner, file_ids=file_ids, k=k, knn=knn)


#: Words a keyword query leaves out: they match everything.
_STOPWORDS_TEXT = (
    "the a an and or of to in on at for with from by is are was were be been it this that "
    "what which who whom whose when where why how does did do can could should would will "
    "about into than then there their them they you your our its his her"
)
_STOPWORDS = frozenset(_STOPWORDS_TEXT.split())
_WORD = re.compile(r"[A-Za-z0-9]{3,}")


def keywords(text: str, limit: int = 16) -> list[str]:
    """The question's words worth searching for, in order, once each."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(text.lower()):
        if word not in _STOPWORDS:
            seen[word] = None
    return list(seen)[:limit]


async def keyword(
    redis: Redis,
    keys: Keys,
    *,
    owner: str,
    file_ids: list[str],
    text: str,
    k: int,
) -> list[Passage]:
    """The ``k`` chunks of ``owner``'s files that best match the words of
    ``text`` (BM25 on the indexed text): what vector search misses when a
    question names an exact code, number or name."""
    words = keywords(text)
    if not file_ids or not words:
        return []
    match = f" @text:({'|'.join(words)})"
    return await _search(redis, keys, owner=owner, file_ids=file_ids, k=k, match=match)


def fuse(by_meaning: list[Passage], by_words: list[Passage], k: int, c: int = 60) -> list[Passage]:
    """Reciprocal rank fusion of the vector and keyword rankings: each gives a
    passage 1/(c + rank), the best sums first. Rank-based, so cosine and BM25
    need no common scale. Passages the same distance apart share a rank (an
    embedder that cannot tell them apart says nothing about their order), and
    ties go to the keyword match: an exact word is the stronger evidence."""
    scores: dict[tuple[str, int], float] = {}
    word_rank: dict[tuple[str, int], int] = {}
    first: dict[tuple[str, int], Passage] = {}
    for p in by_meaning:
        rank = sum(1 for q in by_meaning if q.distance < p.distance)
        key = (p.file_id, p.n)
        scores[key] = scores.get(key, 0.0) + 1.0 / (c + rank + 1)
        first.setdefault(key, p)
    for rank, p in enumerate(by_words):
        key = (p.file_id, p.n)
        scores[key] = scores.get(key, 0.0) + 1.0 / (c + rank + 1)
        word_rank[key] = rank
        first.setdefault(key, p)
    best = sorted(scores, key=lambda key: (-scores[key], word_rank.get(key, len(by_words))))
    return [first[key] for key in best[:k]]


async def whole(redis: Redis, keys: Keys, *, owner: str, file_id: str, count: int) -> list[Passage]:
    """All ``count`` chunks of one file, in order (a document small enough to
    go into the prompt whole). The owner is checked on each chunk."""
    pipe = redis.pipeline(transaction=False)
    for n in range(count):
        pipe.hmget(keys.chunk(file_id, n), ["owner", "page", "text"])
    out: list[Passage] = []
    for n, row in enumerate(cast(list[list[str | None]], await pipe.execute())):
        chunk_owner, page, text = row
        if chunk_owner != owner or text is None:
            continue
        out.append(Passage(file_id=file_id, n=n, page=int(page or 0), text=text))
    return out


async def count_chunks(redis: Redis, keys: Keys, *, owner: str, file_id: str) -> int:
    """How many chunks of the file the index holds (tests, operators)."""
    reply = await _command(redis)(
        "FT.SEARCH",
        keys.chunk_index(),
        f"@owner:{{$owner}} @file:{{{tag(file_id)}}}",
        "PARAMS",
        "2",
        "owner",
        owner,
        "LIMIT",
        "0",
        "0",
        "DIALECT",
        "2",
    )
    return int(reply["total_results"])
