"""The models file (TOML, named by ``TIDECHAT_MODELS``): what users can pick.

Gateway and workers read the same file: the gateway to validate a request's
``model`` and to route the turn to the model's pool, the worker to build the
backend that serves it. Without a file, the embedded default is the bundled
local Gemma model (or the GGUF named by ``tidechat up --model`` /
``TIDECHAT_MODEL_PATH``), plus a Hugging Face model when ``HF_TOKEN`` is set.

A local model's context window comes from its GGUF file (the length it was
trained for, at most ``LOCAL_CONTEXT_CAP``) unless the models file sets it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.gguf import GGUFError, context_length, looks_instruct, read_metadata
from shared.keys import LOCAL_CONTEXT_CAP
from shared.moderation import ModerationConfig
from shared.suggestions import Suggestion
from shared.toml_file import read_toml_file

PoolName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
#: Group names (the console's groups of users): letters, digits and ``_.-``.
GROUP_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
GroupName = Annotated[str, Field(pattern=GROUP_PATTERN)]


class _ModelBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: What clients send as ``model``: letters, digits and ``_.:-``.
    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
    label: str | None = None
    pool: PoolName = "default"
    #: Tokens the model can attend to: prompt and reply together.
    context_window: Annotated[int, Field(ge=256)] = 8192
    #: Reply budget: the most tokens one reply may have. The prompt gets the
    #: rest of the context window.
    max_tokens: Annotated[int, Field(ge=1)] = 1024
    temperature: Annotated[float, Field(ge=0.0, le=2.0)] = 0.7
    top_p: Annotated[float, Field(gt=0.0, le=1.0)] | None = None
    #: Strings that end the reply when the model writes them.
    stop: list[str] = Field(default_factory=list)
    #: Whether the worker asks this model for a conversation title after the
    #: first reply (else the first words of the question are used).
    auto_title: bool = True
    #: What the empty chat offers to ask this model; None: its backend's
    #: defaults (``shared/suggestions.py``), [] for none.
    suggestions: list[Suggestion] | None = None
    #: The groups whose members may use this model (None or empty: everyone).
    #: An admin can change it at run time in the console, which then wins.
    groups: list[GroupName] | None = None
    #: The model reads images: a question's attached images go to it as
    #: image parts (OpenAI-compatible ``image_url``; the ``hf`` backend).
    #: Models without it are never sent one (the composer says so first).
    vision: bool = False

    @property
    def display_name(self) -> str:
        return self.label or self.id


class HFModel(_ModelBase):
    """Hugging Face Inference Providers by model id, or any OpenAI-compatible
    server (TGI, vLLM, llama.cpp server) by ``base_url``."""

    backend: Literal["hf"]
    model: str | None = None
    base_url: str | None = None
    provider: str | None = None
    #: Environment variable holding the API token (never the token itself).
    token_env: str = "HF_TOKEN"

    @model_validator(mode="after")
    def _model_or_url(self) -> HFModel:
        if not self.model and not self.base_url:
            raise ValueError("an hf model needs `model` (a Hub model id) or `base_url`")
        return self


class LlamaCppModel(_ModelBase):
    """A GGUF model run in-process by llama-cpp-python."""

    backend: Literal["llamacpp"]
    #: Path to a GGUF file; default: the bundled Gemma 3 270M.
    path: str | None = None
    repeat_penalty: Annotated[float, Field(ge=0.0)] = 1.1
    threads: Annotated[int, Field(ge=1)] | None = None
    #: How conversations become the prompt: "chat" (the model's chat
    #: template; instruct models) or "dialogue" (a plain-text transcript;
    #: base models). None: decided from the GGUF's metadata.
    prompt_format: Literal["chat", "dialogue"] | None = None


#: ``fail_status`` of a scripted model whose failure kills the worker process
#: (chaos tests of turns that crash every worker taking them).
CRASH_STATUS = -1


class ScriptedModel(_ModelBase):
    """Deterministic text at a set rate, for tests and benchmarks that measure
    the system rather than a model."""

    backend: Literal["scripted"]
    reply_tokens: Annotated[int, Field(ge=0)] = 64
    #: 0 means as fast as it can.
    tokens_per_second: Annotated[float, Field(ge=0)] = 0
    #: Seconds before the first token (a model's prompt processing).
    first_token_delay: Annotated[float, Field(ge=0)] = 0
    #: A user message containing this text makes the backend fail (tests of
    #: retries and dead letters); ``fail_status`` says how: an HTTP status, or
    #: ``CRASH_STATUS`` (-1) for the worker process dying on the spot.
    fail_on: str | None = None
    fail_status: int = 500
    #: Scripted text makes no useful title: the first words are used instead.
    auto_title: bool = False


ModelSpec = Annotated[HFModel | LlamaCppModel | ScriptedModel, Field(discriminator="backend")]


class ModelsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    models: Annotated[list[ModelSpec], Field(min_length=1)]
    #: The moderation hook (``shared/moderation.py``); absent: off.
    moderation: ModerationConfig | None = None

    @model_validator(mode="after")
    def _unique_ids(self) -> ModelsFile:
        seen: set[str] = set()
        for spec in self.models:
            if spec.id in seen:
                raise ValueError(f"model id {spec.id!r} appears twice")
            seen.add(spec.id)
        return self


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
