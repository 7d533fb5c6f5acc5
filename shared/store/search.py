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
conversations' summaries and the best message of each by key.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from shared.conversation import Highlight, SearchHit, Snippet
from shared.keys import SEARCH_DOCS, SEARCH_ROUNDS, SNIPPET_CHARS, Keys
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
        offset = 0
        for _round in range(SEARCH_ROUNDS):
            try:
                reply = await _command(
                    self.redis,
                    "FT.SEARCH",
                    self.keys.search_index(),
                    query,
                    "NOCONTENT",
                    "LIMIT",
                    offset,
                    SEARCH_DOCS,
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
                    return []
                raise
            ids = _doc_ids(reply)
            for key in ids:
                cid, mid = self._parse_key(key)
                if cid is not None and cid not in best:
                    best[cid] = mid
            offset += len(ids)
            if len(best) >= limit or len(ids) < SEARCH_DOCS:
                break
        cids = list(best)[:limit]
        summaries = await self.store.summaries(cids)
        texts = await self._texts([(cid, best[cid]) for cid in cids])
        hits: list[SearchHit] = []
        for cid, summary, found in zip(cids, summaries, texts, strict=True):
            if summary is None:
                continue  # being deleted, or a replay's copy
            mid = best[cid]
            hit = SearchHit(**summary.model_dump())
            if mid is not None and found is not None:
                hit.snippet = snippet(mid, found, words)
            hits.append(hit)
        return hits

    def _parse_key(self, key: str) -> tuple[str | None, str | None]:
        """(conversation id, message id or None) of an indexed key."""
        if key.startswith(self._msg_prefix):
            rest = key[len(self._msg_prefix) :]
            cid, _, mid = rest.partition("}:")
            return cid.lstrip("{"), mid
        if key.startswith(self._conv_prefix):
            return key[len(self._conv_prefix) :].strip("{}"), None
        return None, None

    async def _texts(self, rows: list[tuple[str, str | None]]) -> list[str | None]:
        pipe = self.redis.pipeline(transaction=False)
        wanted = [(cid, mid) for cid, mid in rows if mid is not None]
        for cid, mid in wanted:
            assert mid is not None
            pipe.hget(self.keys.message(cid, mid), "t")
        got = iter(await pipe.execute() if wanted else [])
        return [next(got) if mid is not None else None for _cid, mid in rows]


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
