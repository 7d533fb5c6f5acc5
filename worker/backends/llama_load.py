"""Opening a GGUF for the ``llamacpp`` backend: where the file is, loading
it with llama-cpp-python (blocking: the backend calls this from a thread),
and how conversations become its prompt (chat template or dialogue)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from shared.gguf import looks_instruct
from shared.local_model import INSTALL_HINT, LocalModelError, bundled_model_path
from shared.models_file import LlamaCppModel
from worker.backends.dialogue import Dialogue
from worker.backends.llama_templates import PromptFormat, chat_template
from worker.errors import BackendError

log = logging.getLogger(__name__)


class ModelFileError(BackendError):
    """The GGUF file is missing or unreadable: not retried, the message says
    which path and how to fix it."""


def model_path(spec: LlamaCppModel, data_dir: Path) -> Path:
    """The GGUF to load: ``spec.path``, else the bundled model (assembled
    into the data directory on first use: call from a thread)."""
    if spec.path:
        return Path(spec.path).expanduser()
    try:
        return bundled_model_path(data_dir)
    except LocalModelError as exc:
        raise ModelFileError(f"model {spec.id}: {exc}") from exc


def open_model(spec: LlamaCppModel, data_dir: Path) -> tuple[Any, PromptFormat]:
    """Load the GGUF (blocking: call from a thread) and choose its prompt format."""
    path = model_path(spec, data_dir)
    if not path.is_file():
        raise ModelFileError(
            f"model {spec.id}: the GGUF file {path} does not exist. Fix `path` for "
            f"this model in the models file (TIDECHAT_MODELS), or remove `path` to use "
            "the bundled Gemma 3 270M"
        )
    try:
        from llama_cpp import Llama
    except ImportError as exc:
        raise ModelFileError(
            f"model {spec.id} needs llama-cpp-python, which is not installed: {INSTALL_HINT}"
        ) from exc
    threads = spec.threads or _cpu_count()
    try:
        llm = Llama(
            model_path=str(path),
            n_ctx=spec.context_window,
            n_threads=threads,
            n_threads_batch=threads,
            verbose=False,
        )
    except (ValueError, RuntimeError, OSError) as exc:
        raise ModelFileError(
            f"model {spec.id}: could not load {path} ({exc}); is it a GGUF file "
            "this version of llama-cpp-python supports?"
        ) from exc
    prompt_format = prompt_format_for(spec, llm, path)
    log.info(
        "loaded %s from %s: context %d, %d threads, prompt format: %s",
        spec.id,
        path,
        spec.context_window,
        threads,
        prompt_format.name,
    )
    return llm, prompt_format


def prompt_format_for(spec: LlamaCppModel, llm: Any, path: Path) -> PromptFormat:
    """The models file's ``prompt_format``, else what the GGUF says: an
    instruct model keeps its chat template, a base model gets a dialogue."""
    choice = spec.prompt_format
    if choice is None:
        choice = "chat" if looks_instruct(llm.metadata, path.name) else "dialogue"
    if choice == "dialogue":
        return Dialogue()
    template = chat_template(llm)
    if template.folds_system:
        template.name += ", system prompt folded into the first user turn"
    return template


def _cpu_count() -> int:
    """CPUs this process may use (a container's CPU set, not the host's)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
