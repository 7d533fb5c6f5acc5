"""Worker settings, from the environment (``TIDECHAT_*``) and ``.env``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr

from shared.settings import CommonSettings


def _default_data_dir() -> Path:
    from shared.paths import default_data_dir

    return default_data_dir()


class WorkerSettings(CommonSettings):
    #: Turns one worker process generates at once.
    concurrency: int = Field(default=4, ge=1, le=1024)
    #: An in-flight turn whose worker has not refreshed it for this long is
    #: taken over by another worker. Running workers refresh theirs every
    #: HEARTBEAT_S, so this can be short.
    claim_idle_seconds: float = Field(default=10.0, gt=0)
    #: How often the claim loop looks for abandoned turns.
    claim_interval_seconds: float = Field(default=1.0, gt=0)
    #: A turn delivered this many times (its workers kept dying) is dead-lettered.
    max_deliveries: int = Field(default=5, ge=1)
    #: Retries of a backend's retryable failures (429, 503, cut connections)
    #: within one delivery, with jittered exponential backoff from retry_base.
    backend_retries: int = Field(default=3, ge=0)
    retry_base_seconds: float = Field(default=0.5, ge=0)
    retry_max_seconds: float = Field(default=20.0, ge=0)
    #: A reply may take this long in all; then it ends with what it has.
    turn_timeout_seconds: float = Field(default=600.0, gt=0)
    #: An upstream silent this long is closed and the turn retried.
    idle_timeout_seconds: float = Field(default=60.0, gt=0)
    #: On SIGTERM, turns in flight get this long to finish before they are
    #: handed back to the other workers.
    drain_timeout_seconds: float = Field(default=20.0, ge=0)
    #: How often acknowledged turns are trimmed off the head of the prompt
    #: streams (XTRIM MINID ~, never past an entry still pending).
    trim_interval_seconds: float = Field(default=30.0, gt=0)
    data_dir: Path = Field(default_factory=_default_data_dir)
    #: How often a retention sweep is queued (one for all workers) when some
    #: group has a retention policy turned on; each sweep deletes the
    #: conversations past their group's limit, in small batches.
    retention_interval_seconds: float = Field(default=3600.0, gt=0)
    #: A call to an "ask" tool waits this long for the user's approval, then
    #: is refused (the model is told).
    tool_approval_timeout_seconds: float = Field(default=300.0, gt=0)

    # --- documents (docs/documents.md) ---------------------------------------
    #: Files one ingestion worker reads at once. Embedding is CPU-bound (the
    #: local model uses every core it can get), so one is the default.
    ingest_concurrency: int = Field(default=1, ge=1, le=64)
    #: Which embedder: ``local`` (all-MiniLM-L6-v2, offline), ``openai``
    #: (any OpenAI-compatible /v1/embeddings), ``hf`` (Hugging Face
    #: feature-extraction), ``hash`` (no model: tests and benchmarks only).
    #: Turn workers embed questions with it too, so every worker agrees.
    embedder: Literal["local", "openai", "hf", "hash"] = "local"
    #: The remote embedder's model id, base URL and vector size.
    embedder_model: str = ""
    embedder_url: str = ""
    embedder_dim: int = Field(default=0, ge=0)
    #: Its API key (``openai``; ``hf`` falls back to HF_TOKEN).
    embedder_token: SecretStr | None = None
    #: Bounds of reading one file (in a child process): wall-clock seconds,
    #: memory (MB of address space), PDF pages, characters of text kept.
    extract_timeout_seconds: float = Field(default=60.0, gt=0)
    extract_memory_mb: int = Field(default=768, ge=128)
    max_pdf_pages: int = Field(default=2000, ge=1)
    max_document_chars: int = Field(default=5_000_000, ge=1000)
