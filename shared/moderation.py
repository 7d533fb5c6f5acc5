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

The table's settings are in ``shared/moderation_config.py``, the review
list in ``shared/moderation_log.py`` (both re-exported here).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from typing import Any, cast

import httpx

from shared.moderation_config import (
    BOTH,
    DEFAULT_REASON,
    ClassifierConfig,
    Direction,
    ModerationConfig,
    ModerationRule,
)
from shared.moderation_log import FlaggedItem, FlagLog, Verdict, flagged

log = logging.getLogger(__name__)

__all__ = [
    "BOTH",
    "DEFAULT_REASON",
    "ClassifierConfig",
    "Direction",
    "FlagLog",
    "FlaggedItem",
    "ModerationConfig",
    "ModerationRule",
    "Moderator",
    "Verdict",
    "flagged",
]


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
