"""Building backends from model specs; one instance per model per worker."""

from __future__ import annotations

import os
from pathlib import Path

from shared.models_file import HFModel, LlamaCppModel, ModelSpec, ScriptedModel
from worker.backends.base import Backend, Delta, GenerationRequest, prompt_framing

__all__ = ["Backend", "BackendPool", "Delta", "GenerationRequest", "prompt_framing"]


class BackendPool:
    """Backends by model id, built on first use and closed together."""

    def __init__(self, *, hf_token: str | None, data_dir: Path, idle_timeout: float = 60.0) -> None:
        self._hf_token = hf_token
        self._data_dir = data_dir
        self._idle_timeout = idle_timeout
        self._backends: dict[str, Backend] = {}

    def get(self, spec: ModelSpec) -> Backend:
        backend = self._backends.get(spec.id)
        if backend is None:
            backend = self._backends[spec.id] = self._build(spec)
        return backend

    def _build(self, spec: ModelSpec) -> Backend:
        if isinstance(spec, ScriptedModel):
            from worker.backends.scripted import ScriptedBackend

            return ScriptedBackend(spec)
        if isinstance(spec, HFModel):
            from worker.backends.hf import HFBackend

            # Each model names the variable holding its token; HF_TOKEN's value
            # comes through the settings (it may live in .env).
            token = (
                self._hf_token if spec.token_env == "HF_TOKEN" else os.environ.get(spec.token_env)
            )
            return HFBackend(spec, token, idle_timeout=self._idle_timeout)
        if isinstance(spec, LlamaCppModel):
            from worker.backends.llamacpp import LlamaCppBackend

            return LlamaCppBackend(spec, data_dir=self._data_dir)
        raise TypeError(f"no backend for {spec!r}")

    async def aclose(self) -> None:
        backends, self._backends = self._backends, {}
        for backend in backends.values():
            await backend.aclose()
