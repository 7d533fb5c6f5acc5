"""The moderation hook's settings: the models file's ``[moderation]`` table
(rules and an optional classifier), validated when the file is read, so
gateway and workers refuse a bad table at start. ``shared/moderation.py``
applies them."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Direction = Literal["input", "output"]
BOTH: list[Direction] = ["input", "output"]

DEFAULT_REASON = "This message goes against this server's content policy."


class ModerationRule(BaseModel):
    """Blocks text that contains one of ``words`` (whole words, any case) or
    matches ``pattern`` (a Python regular expression)."""

    model_config = ConfigDict(extra="forbid")

    words: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)
    pattern: str | None = None
    #: What the user is told (default: the section's ``reason``).
    reason: str | None = None
    applies_to: list[Direction] = Field(default_factory=lambda: list(BOTH))

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {exc}") from exc
        return value

    @model_validator(mode="after")
    def _something(self) -> ModerationRule:
        if not self.words and not self.pattern:
            raise ValueError("a moderation rule needs `words` or `pattern`")
        return self

    def regex(self) -> re.Pattern[str]:
        parts = [rf"\b{re.escape(w)}\b" for w in self.words]
        if self.pattern:
            parts.append(f"(?:{self.pattern})")
        return re.compile("|".join(parts), re.IGNORECASE if self.words else 0)


class ClassifierConfig(BaseModel):
    """A classification endpoint. ``format = "hf"``: the Hugging Face
    Inference API's text classification (``model``: a Hub id, or ``url``: an
    endpoint); ``"openai"``: an OpenAI-compatible ``/v1/moderations`` (``url``,
    optional ``model``)."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["hf", "openai"] = "hf"
    url: str | None = None
    model: str | None = None
    #: Environment variable holding the endpoint's key (never the key itself).
    token_env: str = "HF_TOKEN"
    #: hf: labels that block when their score reaches ``threshold``; openai:
    #: categories that block (empty: whatever the endpoint flags).
    labels: list[str] = Field(default_factory=list)
    threshold: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5
    reason: str | None = None
    applies_to: list[Direction] = Field(default_factory=lambda: list(BOTH))
    timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 5.0
    #: When the endpoint fails or times out: let the text through ("allow",
    #: the default: a moderation outage must not stop all chat) or block it.
    on_error: Literal["allow", "block"] = "allow"

    @model_validator(mode="after")
    def _target(self) -> ClassifierConfig:
        if self.format == "hf" and not (self.url or self.model):
            raise ValueError("an hf classifier needs `model` (a Hub model id) or `url`")
        if self.format == "openai" and not self.url:
            raise ValueError("an openai classifier needs `url` (…/v1/moderations)")
        if self.format == "hf" and not self.labels:
            raise ValueError("an hf classifier needs `labels`: which labels block")
        return self


class ModerationConfig(BaseModel):
    """The models file's ``[moderation]`` table."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    #: The reason shown when a rule or the classifier gives none.
    reason: str = DEFAULT_REASON
    rules: list[ModerationRule] = Field(default_factory=list)
    classifier: ClassifierConfig | None = None

    @property
    def active(self) -> bool:
        return self.enabled and bool(self.rules or self.classifier)

    def summary(self) -> dict[str, Any]:
        """What the console shows (no secrets: the token's variable name only)."""
        c = self.classifier
        return {
            "enabled": self.active,
            "rules": [
                {
                    "words": len(r.words),
                    "pattern": r.pattern is not None,
                    "reason": r.reason or self.reason,
                    "applies_to": r.applies_to,
                }
                for r in self.rules
            ],
            "classifier": None
            if c is None
            else {
                "format": c.format,
                "target": c.model or c.url,
                "labels": c.labels,
                "threshold": c.threshold,
                "applies_to": c.applies_to,
                "on_error": c.on_error,
            },
        }
