"""Conversation search on Redis's query engine.

One index (``Keys.search_index``) over two key prefixes: conversation
hashes (``tc:conv:{cid}``, their title in ``t``) and, unless the operator
leaves them out (``TIDECHAT_SEARCH_MESSAGES=false``), message hashes
(``tc:msg:{cid}:<mid>``, their text in ``t``). Both carry their owner in
``o``, a TAG: every query filters on it *inside* the query (a parameter,
``@o:{$owner}``, so no id needs escaping and nothing can be injected),
never by filtering results afterwards, so another user's text can neither
show nor take a result's place.

Options taken for memory (docs/redis.md): ``NOOFFSETS`` (no term positions:
no exact phrases, no FT highlighting; the gateway cuts and marks snippets
itself from the text it reads back) and ``NOFIELDS`` (one text field).

The search asks for matching documents best first (BM25) with
``NOCONTENT`` (ids only: works on a cluster node without the coordinator,
docs/redis.md), groups them by conversation in rank order, then reads the
conversations' summaries and the best message of each by key, in one
round trip. Measured (bench/storage.py), the engine's time is almost all
spent walking the matches (every message of the user holding the words):
how many ids it returns matters a little (100 rather than 500: -2 ms),
the scorer (BM25 or TFIDF) does not.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from shared.conversation import Highlight, SearchHit, Snippet
from shared.keys import SEARCH_DOCS, SEARCH_MORE_DOCS, SNIPPET_CHARS, Keys
from shared.store.conversations import ConversationStore

#: Words of a query: letters and digits (the engine's tokenizer splits on
#: punctuation too).
_WORD = re.compile(r"\w+", re.UNICODE)


def query_words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)][:20]


def build_query(words: list[str]) -> str:
    """The text part of a query: every word must match (in the title or one
    message), the last one as a prefix while it is being typed (prefixes
    need two characters). Words are letters and digits only, so they need
    no escaping."""
    parts = [f"{w}*" if i == len(words) - 1 and len(w) >= 2 else w for i, w in enumerate(words)]
    return "@t:(" + " ".join(parts) + ")"


def snippet(message_id: str, text: str, words: list[str], width: int = SNIPPET_CHARS) -> Snippet:
    """A stretch of ``text`` around its first matched word, with every word
    of the query that starts a word in it marked (the last as a prefix).
    A match the engine found by stemming alone marks nothing: the snippet
    is then the text's beginning."""
    if not words:
        return Snippet(message_id=message_id, text=text[:width])
    last = words[-1]
    exact = [re.escape(w) for w in words[:-1]]
    pattern = re.compile(
        r"\b(?:" + "|".join([*exact, re.escape(last) + r"\w*"]) + r")\b"
        if exact
        else r"\b" + re.escape(last) + r"\w*",
        re.IGNORECASE,
    )
    first = pattern.search(text)
    start = 0
    if first is not None and first.start() > width // 3:
        start = first.start() - width // 3
        space = text.find(" ", start)
        if 0 <= space < first.start():
            start = space + 1
    end = min(len(text), start + width)
    cut = text[start:end]
    marks = [Highlight(start=m.start(), end=m.end()) for m in pattern.finditer(cut)]
    prefix = "…" if start > 0 else ""
    suffix = "…" if end < len(text) else ""
    shift = len(prefix)
    marks = [Highlight(start=h.start + shift, end=h.end + shift) for h in marks]
    return Snippet(message_id=message_id, text=prefix + cut + suffix, highlights=marks)


class Search:
    def __init__(
        self, redis: Redis, keys: Keys, store: ConversationStore, *, messages: bool = True
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.store = store
        #: Message text is indexed (``TIDECHAT_SEARCH_MESSAGES``).
        self.messages = messages
        self._conv_prefix = keys.conversation("")[: -len("{}")]
        self._msg_prefix = keys.message_prefix("")[: -len("{}:")]

    # --- the index ---------------------------------------------------------

    async def ensure_index(self) -> bool:
        return await ensure_index(self.redis, self.keys, messages=self.messages)

    async def indexing(self) -> bool:
        """Whether the index is still scanning keys written before it."""
        info = await _info(self.redis, self.keys.search_index())
        return str(info.get("indexing", "0")) not in ("0", "0.0")

    # --- searching ---------------------------------------------------------

    async def search(self, uid: str, text: str, *, limit: int = 20) -> list[SearchHit]:
        """The caller's conversations matching ``text``, best first, each
        with a snippet of its best-matching message (none when its title
        matched best)."""
        words = query_words(text)
        if not words:
            return []
        query = "@o:{$owner} " + build_query(words)
        best: dict[str, str | None] = {}  # cid -> best message key (None: the title)
        # A first page of documents is enough when the matches spread over
        # many conversations (the usual case); when a few conversations took
        # it, the next documents are asked for once (scoring every match again).
        for offset, count in ((0, SEARCH_DOCS), (SEARCH_DOCS, SEARCH_MORE_DOCS)):
            ids = await self._ranked(query, uid, offset, count)
            if ids is None:
                return []
            for key in ids:
                cid, mid = self._parse_key(key)
                if cid is not None and cid not in best:
                    best[cid] = mid
            if len(best) >= limit or len(ids) < count:
                break
        cids = list(best)[:limit]
        if not cids:
            return []
        # Summaries and the best messages' text in one round trip.
        pipe = self.redis.pipeline(transaction=False)
        self.store.queue_summaries(pipe, cids)
        wanted = [(cid, mid) for cid in cids if (mid := best[cid]) is not None]
        for cid, mid in wanted:
            pipe.hget(self.keys.message(cid, mid), "t")
        raw = await pipe.execute()
        summaries = self.store.read_summaries(cids, raw)
        texts = dict(zip(wanted, raw[2 * len(cids) :], strict=True))
        hits: list[SearchHit] = []
        for cid, summary in zip(cids, summaries, strict=True):
            if summary is None:
                continue  # being deleted, or a replay's copy
            mid = best[cid]
            hit = SearchHit(**summary.model_dump())
            found = texts.get((cid, mid)) if mid is not None else None
            if mid is not None and found is not None:
                hit.snippet = snippet(mid, found, words)
            hits.append(hit)
        return hits

    async def _ranked(self, query: str, uid: str, offset: int, count: int) -> list[str] | None:
        """Keys of matching documents, best first (BM25); None when the
        index is missing (made again: this search finds nothing)."""
        try:
            reply = await _command(
                self.redis,
                "FT.SEARCH",
                self.keys.search_index(),
                query,
                "NOCONTENT",
                "LIMIT",
                offset,
                count,
                "PARAMS",
                2,
                "owner",
                uid,
                "DIALECT",
                2,
            )
        except ResponseError as exc:
            if "no such index" in str(exc).lower() or "unknown index" in str(exc).lower():
                await self.ensure_index()  # dropped by hand, or Redis was away at start
                return None
            raise
        return _doc_ids(reply)

    def _parse_key(self, key: str) -> tuple[str | None, str | None]:
        """(conversation id, message id or None) of an indexed key."""
        if key.startswith(self._msg_prefix):
            rest = key[len(self._msg_prefix) :]
            cid, _, mid = rest.partition("}:")
            return cid.lstrip("{"), mid
        if key.startswith(self._conv_prefix):
            return key[len(self._conv_prefix) :].strip("{}"), None
        return None, None


def index_prefixes(keys: Keys, messages: bool) -> list[str]:
    """Key prefixes the index covers: conversations, and messages unless left out."""
    conv = keys.conversation("")[: -len("{}")]
    msg = keys.message_prefix("")[: -len("{}:")]
    return [conv, *([msg] if messages else [])]


async def ensure_index(redis: Redis, keys: Keys, *, messages: bool = True) -> bool:
    """Create the index if it is missing, or again (documents kept) if it
    covers other prefixes than asked (the message-text setting changed).
    True when it was (re)created: existing keys are then indexed in the
    background (``FT.INFO`` ``indexing``)."""
    name = keys.search_index()
    wanted = index_prefixes(keys, messages)
    try:
        info: dict[str, Any] | None = await _info(redis, name)
    except ResponseError:
        info = None
    if info is not None:
        if sorted(_prefixes_of(info)) == sorted(wanted):
            return False
        await _command(redis, "FT.DROPINDEX", name)
    try:
        await _create(redis, name, wanted)
    except ResponseError as exc:
        if "already exists" not in str(exc).lower():
            raise
        return False  # another process (a second gateway starting) made it first
    return True


async def _create(redis: Redis, name: str, wanted: list[str]) -> None:
    await _command(
        redis,
        "FT.CREATE",
        name,
        "ON",
        "HASH",
        "PREFIX",
        len(wanted),
        *wanted,
        "NOOFFSETS",
        "NOFIELDS",
        "SCHEMA",
        "o",
        "TAG",
        "t",
        "TEXT",
    )


async def _command(redis: Redis, *args: Any) -> Any:
    """A raw command (redis-py leaves ``execute_command`` unannotated)."""
    execute = cast(Callable[..., Awaitable[Any]], redis.execute_command)
    return await execute(*args)


async def _info(redis: Redis, index: str) -> dict[str, Any]:
    """``FT.INFO`` as a dict (RESP3 answers a map, RESP2 a flat list)."""
    reply = await _command(redis, "FT.INFO", index)
    if isinstance(reply, list):
        return dict(zip(reply[::2], reply[1::2], strict=False))
    return cast(dict[str, Any], reply)


def _doc_ids(reply: Any) -> list[str]:
    """Document ids of an ``FT.SEARCH … NOCONTENT`` reply, RESP3 or RESP2."""
    if isinstance(reply, dict):
        return [str(r["id"]) for r in reply.get("results", [])]
    return [str(x) for x in list(reply)[1:]]


def _prefixes_of(info: dict[str, Any]) -> list[str]:
    definition = info.get("index_definition")
    if isinstance(definition, list):
        definition = dict(zip(definition[::2], definition[1::2], strict=False))
    if not isinstance(definition, dict):
        return []
    return [str(p) for p in definition.get("prefixes", [])]
