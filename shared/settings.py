"""Settings common to every tidechat process, read from the environment and
``.env`` when a process starts (never at import time)."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.keys import AUDIT_MAXLEN, Keys
from shared.models_file import ModelCatalog, load_models
from shared.tools import ToolsFile, load_tools


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TIDECHAT_", env_file=".env", extra="ignore", populate_by_name=True
    )

    redis_url: str = Field(
        default="redis://127.0.0.1:6379/0",
        validation_alias=AliasChoices("REDIS_URL", "TIDECHAT_REDIS_URL"),
    )
    #: Path of the models file; unset means the embedded default.
    models: str | None = Field(default=None, validation_alias=AliasChoices("TIDECHAT_MODELS"))
    #: Tools (issue 15): path of the tools file (MCP servers, which models
    #: use them; docs/tools.md); unset: no tools. Workers connect to the
    #: servers; a gateway reads it only to tell clients which models have
    #: tools (server ids, never addresses or tokens).
    tools: str | None = None
    #: A GGUF file to run as the local model instead of the bundled one
    #: (``tidechat up --model``); only without a models file.
    model_path: str | None = None
    hf_token: SecretStr | None = Field(default=None, validation_alias=AliasChoices("HF_TOKEN"))
    key_prefix: str = "tc:"
    #: Turns one user may have on a pool's shared stream at once (waiting for
    #: a worker or being generated); the rest wait in the user's own line,
    #: so one user's queue never stands in front of everyone else's
    #: (shared/fairness.py). Gateways and workers must agree on it.
    fair_turns_per_user: int = Field(default=2, ge=1)
    log_level: str = "info"
    #: Entries the audit log keeps (about: trimmed with MAXLEN ~), oldest
    #: dropped first. Export it (``tidechat audit --json``) to keep more.
    audit_maxlen: int = Field(default=AUDIT_MAXLEN, ge=1_000)

    @property
    def keys(self) -> Keys:
        return Keys(self.key_prefix)

    def load_tools(self) -> ToolsFile:
        return load_tools(self.tools)

    def load_models(self) -> ModelCatalog:
        return load_models(
            self.models, hf_token_set=self.hf_token is not None, model_path=self.model_path
        )
