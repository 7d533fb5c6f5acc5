"""The moderation hook: an optional check of each user message before it is
queued (gateway) and of each reply as it completes (worker).

Configured in the models file's ``[moderation]`` table, so gateway and
workers read the same rules; absent, nothing is checked (off by default).
Two kinds of check, either or both:

- **rules**: keyword lists (whole words, any case) and regular expressions,
  each with the reason the admin wants the user to read;
- **a classifier**: any text-classification endpoint, in the Hugging Face
  Inference API format (``huggingface_hub``'s ``text_classification``: a
  Hub model id through Inference Providers, or the URL of an Inference
  Endpoint / TEI / any server answering ``[[{"label", "score"}]]``), or an
  OpenAI-compatible ``/v1/moderations`` endpoint.

A blocked user message is stored, marked blocked, and never answered; a
blocked reply's text is withheld. Either way an entry goes on the
moderation stream (``FlagLog``, with a short excerpt for the admin's
review) and the audit log (without the text).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, cast

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from redis.asyncio import Redis

from shared.keys import MODERATION_EXCERPT_CHARS, MODERATION_MAXLEN, Keys

log = logging.getLogger(__name__)

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


@dataclass(frozen=True, slots=True)
class Verdict:
    """A block: what the user reads, and what matched (for the admin)."""

    reason: str
    rule: str


class Moderator:
    """Checks text against the rules, then the classifier. ``check`` is
    cheap when only rules are set (compiled once); a classifier costs one
    HTTP request per checked text, bounded by its timeout."""

    def __init__(
        self,
        config: ModerationConfig | None,
        *,
        env: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = config if config is not None and config.active else None
        self._rules = [(r, r.regex()) for r in (self.config.rules if self.config else [])]
        classifier = self.config.classifier if self.config else None
        self._classifier = classifier
        environ = os.environ if env is None else env
        self._token = environ.get(classifier.token_env) if classifier else None
        self._transport = transport
        self.errors = 0

    @property
    def active(self) -> bool:
        return self.config is not None

    def applies(self, direction: Direction) -> bool:
        if self.config is None:
            return False
        return any(direction in r.applies_to for r, _ in self._rules) or bool(
            self._classifier and direction in self._classifier.applies_to
        )

    async def check(self, text: str, direction: Direction) -> Verdict | None:
        """None: the text may pass; else why it may not."""
        if self.config is None or not text.strip():
            return None
        for i, (rule, regex) in enumerate(self._rules):
            if direction in rule.applies_to and regex.search(text):
                return Verdict(rule.reason or self.config.reason, f"rule {i + 1}")
        c = self._classifier
        if c is None or direction not in c.applies_to:
            return None
        try:
            async with asyncio.timeout(c.timeout_seconds):
                hit = await (self._hf(c, text) if c.format == "hf" else self._openai(c, text))
        except Exception as exc:
            # Never the text or the token in the log: the endpoint and the failure.
            self.errors += 1
            log.warning("moderation classifier failed (%s); %s", type(exc).__name__, c.on_error)
            if c.on_error == "block":
                return Verdict(c.reason or self.config.reason, "classifier unavailable")
            return None
        if hit is None:
            return None
        return Verdict(c.reason or self.config.reason, f"classifier: {hit}")

    async def _hf(self, c: ClassifierConfig, text: str) -> str | None:
        # huggingface_hub imported here: the gateway loads it only when a
        # classifier is configured.
        from huggingface_hub import AsyncInferenceClient

        # A URL with no token of its own must not get the machine's HF token.
        headers = None if self._token else cast(dict[str, str], {"authorization": None})
        client = AsyncInferenceClient(
            token=self._token, timeout=c.timeout_seconds, headers=headers if c.url else None
        )
        try:
            found: Any = await client.text_classification(text, model=c.url or c.model)
        finally:
            await client.close()  # type: ignore[no-untyped-call]
        rows = found if isinstance(found, list) else [found]
        wanted = {label.casefold() for label in c.labels}
        for row in rows:
            label, score = str(row.label), float(row.score or 0)
            if label.casefold() in wanted and score >= c.threshold:
                return f"{label} {score:.2f}"
        return None

    async def _openai(self, c: ClassifierConfig, text: str) -> str | None:
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        body: dict[str, Any] = {"input": text}
        if c.model:
            body["model"] = c.model
        assert c.url is not None
        # A client per check, like the hf path: nothing to close at shutdown.
        async with httpx.AsyncClient(transport=self._transport) as http:
            r = await http.post(c.url, json=body, headers=headers, timeout=c.timeout_seconds)
        r.raise_for_status()
        result = r.json()["results"][0]
        categories: dict[str, bool] = result.get("categories") or {}
        scores: dict[str, float] = result.get("category_scores") or {}
        if c.labels:
            for label in c.labels:
                if categories.get(label) or scores.get(label, 0.0) >= c.threshold:
                    return f"{label} {scores.get(label, 1.0):.2f}"
            return None
        if result.get("flagged"):
            top = [k for k, v in categories.items() if v] or ["flagged"]
            return ", ".join(top)
        return None


class FlaggedItem(BaseModel):
    """A blocked message or reply, as the console lists it."""

    id: str = ""
    ts: float
    direction: Direction
    user_id: str
    username: str = ""
    conversation_id: str
    message_id: str
    model: str | None = None
    reason: str
    rule: str
    excerpt: str


class FlagLog:
    """The moderation stream: the only writer of ``keys.moderation()``."""

    def __init__(self, redis: Redis, keys: Keys, maxlen: int = MODERATION_MAXLEN) -> None:
        self.redis = redis
        self.keys = keys
        self.maxlen = maxlen

    def queue(self, pipe: Any, item: FlaggedItem) -> None:
        item = item.model_copy(update={"excerpt": item.excerpt[:MODERATION_EXCERPT_CHARS]})
        pipe.xadd(
            self.keys.moderation(),
            {"d": item.model_dump_json(exclude={"id"})},
            maxlen=self.maxlen,
            approximate=True,
        )

    async def list(
        self, *, before: str | None = None, limit: int = 50
    ) -> tuple[list[FlaggedItem], str | None]:
        """Newest first; ``before``: an entry id (exclusive) to page on."""
        top = f"({before}" if before else "+"
        rows = cast(
            list[tuple[str, dict[str, str]]],
            await self.redis.xrevrange(self.keys.moderation(), top, "-", count=limit),
        )
        items = [
            FlaggedItem.model_validate_json(f["d"]).model_copy(update={"id": i}) for i, f in rows
        ]
        return items, (rows[-1][0] if len(rows) == limit else None)


def flagged(
    verdict: Verdict,
    *,
    direction: Direction,
    user_id: str,
    username: str = "",
    conversation_id: str,
    message_id: str,
    text: str,
    model: str | None = None,
) -> FlaggedItem:
    return FlaggedItem(
        ts=time.time(),
        direction=direction,
        user_id=user_id,
        username=username,
        conversation_id=conversation_id,
        message_id=message_id,
        model=model,
        reason=verdict.reason,
        rule=verdict.rule,
        excerpt=text[:MODERATION_EXCERPT_CHARS],
    )
