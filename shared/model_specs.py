"""One entry of the models file: a model users can pick, by backend (``hf``,
``llamacpp``, ``scripted``), and the file's schema. Read and turned into the
catalog by ``shared/models_file.py``, which re-exports these names."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.moderation_config import ModerationConfig
from shared.suggestions import Suggestion

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
