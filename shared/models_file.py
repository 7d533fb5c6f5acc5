"""The models file (TOML, named by ``TIDECHAT_MODELS``): what users can pick.

Gateway and workers read the same file: the gateway to validate a request's
``model`` and to route the turn to the model's pool, the worker to build the
backend that serves it. Without a file, the embedded default is the bundled
local Gemma model (or the GGUF named by ``tidechat up --model`` /
``TIDECHAT_MODEL_PATH``), plus a Hugging Face model when ``HF_TOKEN`` is set.

A local model's context window comes from its GGUF file (the length it was
trained for, at most ``LOCAL_CONTEXT_CAP``) unless the models file sets it.
An entry's schema is ``shared/model_specs.py`` (re-exported here).
"""

from __future__ import annotations

import re
from pathlib import Path

from shared.gguf import GGUFError, context_length, looks_instruct, read_metadata
from shared.keys import LOCAL_CONTEXT_CAP
from shared.model_specs import (
    CRASH_STATUS,
    GROUP_PATTERN,
    GroupName,
    HFModel,
    LlamaCppModel,
    ModelsFile,
    ModelSpec,
    PoolName,
    ScriptedModel,
)
from shared.moderation_config import ModerationConfig
from shared.toml_file import read_toml_file

__all__ = [
    "CRASH_STATUS",
    "DEFAULT_HF_MODEL",
    "DEFAULT_LOCAL_MODEL_ID",
    "GROUP_PATTERN",
    "GroupName",
    "HFModel",
    "LlamaCppModel",
    "ModelCatalog",
    "ModelSpec",
    "ModelsFile",
    "ModelsFileError",
    "PoolName",
    "ScriptedModel",
    "UnknownModelError",
    "bundled_model",
    "default_models",
    "gguf_model",
    "load_models",
]


class ModelsFileError(Exception):
    """The models file is missing or invalid; the message says where and why."""


class UnknownModelError(LookupError):
    """A model id the models file does not offer. The message names it (cut
    short: a client may send anything) and lists what is offered."""

    def __init__(self, model_id: str, offered: list[str]) -> None:
        shown = repr(model_id) if len(model_id) <= 40 else repr(model_id[:40]) + "…"
        super().__init__(f"unknown model {shown}; offered: {', '.join(offered)}")
        self.model_id = model_id
        self.message = str(self)


class ModelCatalog:
    """The models on offer, by id; the first one is the default."""

    def __init__(self, models: list[ModelSpec], moderation: ModerationConfig | None = None) -> None:
        if not models:
            raise ModelsFileError("no models configured")
        self.models = list(models)
        self.by_id = {m.id: m for m in self.models}
        self.moderation = moderation

    @property
    def default(self) -> ModelSpec:
        return self.models[0]

    def get(self, model_id: str | None) -> ModelSpec | None:
        return self.default if model_id is None else self.by_id.get(model_id)

    def require(self, model_id: str) -> ModelSpec:
        """The model ``model_id``, or UnknownModelError: the one check every
        process makes of a model a client, a turn or an operator names."""
        spec = self.by_id.get(model_id)
        if spec is None:
            raise UnknownModelError(model_id, [m.id for m in self.models])
        return spec

    def pools(self) -> list[str]:
        return sorted({m.pool for m in self.models})

    def in_pools(self, pools: list[str]) -> list[ModelSpec]:
        return [m for m in self.models if m.pool in pools]


DEFAULT_LOCAL_MODEL_ID = "gemma-3-270m"
DEFAULT_HF_MODEL = "meta-llama/Llama-3.1-8B-Instruct"


def bundled_model() -> LlamaCppModel:
    """The bundled Gemma 3 270M, with settings chosen by ``bench.quality``."""
    return LlamaCppModel(
        id=DEFAULT_LOCAL_MODEL_ID,
        label="Gemma 3 270M (local)",
        backend="llamacpp",
        pool="local",
        context_window=8192,
        # Short answers to simple questions: a longer reply is a ramble.
        max_tokens=256,
        # Measured (docs/benchmarks.md): expected answers fall from 66% of
        # the questions at 0.1 to 45% at 0.7; 0.1 still varies a regenerated
        # reply where the model is unsure. 1.15 beat 1.0, 1.1 and 1.3.
        temperature=0.1,
        repeat_penalty=1.15,
        # Asked for a title, a base model this small answers the question
        # ("Paris"): the question's first words make a better one.
        auto_title=False,
    )


def gguf_model(path: Path) -> LlamaCppModel:
    """A local model for any GGUF file (``tidechat up --model``): named after
    the file, its context window from the file."""
    path = path.expanduser()
    if not path.is_file():
        raise ModelsFileError(
            f"the model file {path} does not exist (tidechat up --model, TIDECHAT_MODEL_PATH)"
        )
    try:
        metadata = read_metadata(path)
    except (GGUFError, OSError) as exc:
        raise ModelsFileError(f"{path} is not a GGUF model file: {exc}") from exc
    stem = path.name.removesuffix(".gguf")
    slug = re.sub(r"[^a-z0-9_.:-]+", "-", stem.lower()).strip("-")[:64] or "local"
    name = str(metadata.get("general.name") or stem)
    return LlamaCppModel(
        id=slug,
        label=f"{name} (local)",
        backend="llamacpp",
        pool="local",
        path=str(path.resolve()),
        context_window=min(context_length(metadata) or LOCAL_CONTEXT_CAP, LOCAL_CONTEXT_CAP),
        # A base model answers instead of titling; an instruct model titles.
        auto_title=looks_instruct(metadata, path.name),
    )


def _with_file_context(spec: ModelSpec) -> ModelSpec:
    """A local model whose entry sets no context window gets its file's
    (when the file is on this machine: a gateway may not have it)."""
    if (
        not isinstance(spec, LlamaCppModel)
        or spec.path is None
        or "context_window" in spec.model_fields_set
    ):
        return spec
    try:
        trained = context_length(read_metadata(Path(spec.path).expanduser()))
    except (GGUFError, OSError):
        return spec
    if trained is None:
        return spec
    return spec.model_copy(update={"context_window": min(trained, LOCAL_CONTEXT_CAP)})


def default_models(hf_token_set: bool, model_path: Path | None = None) -> list[ModelSpec]:
    """The embedded default: the bundled local model (or ``model_path``'s),
    plus a Hub model with a token."""
    models: list[ModelSpec] = [gguf_model(model_path) if model_path else bundled_model()]
    if hf_token_set:
        models.append(
            HFModel(
                id="llama-3.1-8b",
                label="Llama 3.1 8B Instruct (Hugging Face)",
                backend="hf",
                model=DEFAULT_HF_MODEL,
                context_window=131072,
                max_tokens=2048,
            )
        )
    return models


def load_models(
    path: str | Path | None, *, hf_token_set: bool = False, model_path: str | Path | None = None
) -> ModelCatalog:
    """Read and validate the models file, or return the embedded default
    (with ``model_path``, a GGUF file, as its local model)."""
    if path is None or str(path) == "":
        gguf = Path(model_path) if model_path else None
        return ModelCatalog(default_models(hf_token_set, gguf))
    file = Path(path)
    if model_path:
        raise ModelsFileError(
            f"a models file ({file}, TIDECHAT_MODELS) and a model file ({model_path}, "
            "--model or TIDECHAT_MODEL_PATH) are both set: add the model to the models "
            "file with `path`, or unset TIDECHAT_MODELS"
        )
    parsed = read_toml_file(file, ModelsFile, "models file", "TIDECHAT_MODELS", ModelsFileError)
    return ModelCatalog([_with_file_context(m) for m in parsed.models], parsed.moderation)
