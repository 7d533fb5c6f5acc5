"""Embedders: text in, unit vectors out, behind one small protocol.

``local`` (the default) is all-MiniLM-L6-v2 run in-process by numpy
(``minilm.py``), offline; ``openai`` posts to any OpenAI-compatible
``/v1/embeddings`` (TEI, vLLM, llama.cpp server, OpenAI); ``hf`` asks Hugging
Face's feature-extraction through ``huggingface_hub``; ``hash`` is a
feature-hashing bag of words: no model, no quality to speak of, but instant
and deterministic (tests and benchmarks of the plumbing, not of retrieval).

Every embedder answers unit-length float32 vectors of its ``dim``, so the
index can rank by inner product (cosine) whichever produced them. The index
is built for one embedder (its ``name`` and ``dim`` are recorded with each
file): changing the embedder needs the files indexed again.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import re
from typing import Any, Literal, Protocol

import httpx
import numpy as np

from worker.config import WorkerSettings

EmbedderKind = Literal["local", "openai", "hf", "hash"]

Vectors = np.ndarray[Any, Any]


class EmbedderError(Exception):
    """The embedder failed (a remote one refused or is unreachable):
    retryable, the job stays pending."""


class Embedder(Protocol):
    name: str
    dim: int

    async def embed(self, texts: list[str]) -> Vectors:
        """One unit vector (float32) per text, in order."""
        ...


def _normalise(vectors: Vectors) -> Vectors:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    out: Vectors = (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
    return out


class LocalEmbedder:
    """all-MiniLM-L6-v2 in this process; loaded on first use (a second, 90 MB)
    and run in a thread, so a worker's event loop keeps its heartbeats."""

    name = "all-MiniLM-L6-v2"
    dim = 384

    def __init__(self) -> None:
        self._model: Any = None
        self._lock = asyncio.Lock()

    async def _load(self) -> Any:
        async with self._lock:
            if self._model is None:
                from worker.documents.minilm import MiniLM

                self._model = await asyncio.to_thread(MiniLM)
        return self._model

    async def embed(self, texts: list[str]) -> Vectors:
        model = await self._load()
        return await asyncio.to_thread(model.embed, texts)


_WORD = re.compile(r"\w+")


class HashEmbedder:
    """Feature hashing of words and word pairs into ``dim`` buckets: shares
    of exact words, not meanings. For tests and benchmarks of the plumbing."""

    name = "hash"

    def __init__(self, dim: int = 256) -> None:
        self.dim = dim

    def _one(self, text: str) -> Vectors:
        v = np.zeros(self.dim, dtype=np.float32)
        words = _WORD.findall(text.lower())
        for token in words + [a + " " + b for a, b in itertools.pairwise(words)]:
            h = int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "little")
            v[h % self.dim] += 1.0 if (h >> 63) & 1 else -1.0
        return v

    async def embed(self, texts: list[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _normalise(np.stack([self._one(t) for t in texts]))


class OpenAIEmbedder:
    """Any OpenAI-compatible ``POST {base_url}/embeddings``."""

    def __init__(
        self,
        base_url: str,
        model: str,
        dim: int,
        token: str | None = None,
        *,
        timeout: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = f"openai:{model}"
        self.dim = dim
        self.url = base_url.rstrip("/") + "/embeddings"
        self.model = model
        self.token = token
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.timeout = timeout
        self.transport = transport

    async def embed(self, texts: list[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        try:
            async with httpx.AsyncClient(timeout=self.timeout, transport=self.transport) as c:
                r = await c.post(
                    self.url, json={"model": self.model, "input": texts}, headers=self.headers
                )
        except httpx.HTTPError as exc:
            raise EmbedderError(f"embeddings endpoint unreachable: {type(exc).__name__}") from exc
        if r.status_code != 200:
            said = r.text[:200]
            if self.token:  # a server may echo the credentials it rejected
                said = said.replace(self.token, "[token]")
            raise EmbedderError(f"embeddings endpoint answered {r.status_code}: {said}")
        try:
            data = sorted(r.json()["data"], key=lambda d: d["index"])
            vectors = np.array([d["embedding"] for d in data], dtype=np.float32)
        except (KeyError, TypeError, ValueError) as exc:
            raise EmbedderError("embeddings endpoint answered something else") from exc
        if vectors.shape != (len(texts), self.dim):
            raise EmbedderError(
                f"embeddings endpoint answered shape {vectors.shape}, "
                f"expected ({len(texts)}, {self.dim})"
            )
        return _normalise(vectors)


class HFEmbedder:
    """Hugging Face feature-extraction (Inference Providers or a TEI
    ``base_url``) through ``huggingface_hub``; a model that answers token
    vectors is mean-pooled."""

    def __init__(self, model: str, dim: int, token: str | None, base_url: str | None = None):
        self.name = f"hf:{model}"
        self.dim = dim
        self.model = model
        self.token = token
        self.base_url = base_url

    async def embed(self, texts: list[str]) -> Vectors:
        from huggingface_hub import AsyncInferenceClient

        client = AsyncInferenceClient(
            model=None if self.base_url else self.model, base_url=self.base_url, token=self.token
        )
        out: list[Vectors] = []
        try:
            for text in texts:
                arr = np.asarray(await client.feature_extraction(text), dtype=np.float32)
                while arr.ndim > 1:
                    arr = arr.mean(axis=0)
                out.append(arr)
        except Exception as exc:  # huggingface_hub raises many kinds
            raise EmbedderError(f"feature-extraction failed: {type(exc).__name__}") from exc
        finally:
            await client.close()  # type: ignore[no-untyped-call]
        if not out:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _normalise(np.stack(out))


def make_embedder(
    kind: EmbedderKind,
    *,
    model: str = "",
    base_url: str = "",
    dim: int = 0,
    token: str | None = None,
) -> Embedder:
    """The embedder the settings name (``TIDECHAT_EMBEDDER`` and friends)."""
    if kind == "local":
        return LocalEmbedder()
    if kind == "hash":
        return HashEmbedder(dim or 256)
    if not model or not dim:
        raise ValueError(f"the {kind} embedder needs TIDECHAT_EMBEDDER_MODEL and _DIM")
    if kind == "openai":
        if not base_url:
            raise ValueError("the openai embedder needs TIDECHAT_EMBEDDER_URL")
        return OpenAIEmbedder(base_url, model, dim, token)
    return HFEmbedder(model, dim, token, base_url or None)


def make_settings_embedder(settings: WorkerSettings) -> Embedder:
    """The embedder the settings name; turn workers and ingestion workers
    both build theirs here, so questions and passages share one space."""
    token = settings.embedder_token or settings.hf_token
    return make_embedder(
        settings.embedder,
        model=settings.embedder_model,
        base_url=settings.embedder_url,
        dim=settings.embedder_dim,
        token=token.get_secret_value() if token else None,
    )
