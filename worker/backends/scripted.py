"""A scripted backend: deterministic text at a set rate, no model.

For tests and benchmarks that measure the system (queueing, streaming,
storage) rather than a model. The reply starts by quoting the question so a
test can see which message was answered, then fills up to ``reply_tokens``
words from a fixed vocabulary.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import AsyncIterator

from shared.conversation import Usage
from shared.models_file import CRASH_STATUS, ScriptedModel
from shared.tokens import estimate_tokens
from worker.backends.base import Delta, GenerationRequest
from worker.errors import BackendError, BackendRateLimited, BackendUnavailable, TurnError

_VOCABULARY = [
    "tide",
    "wave",
    "harbor",
    "current",
    "drift",
    "shore",
    "reef",
    "sail",
    "anchor",
    "compass",
    "beacon",
    "lantern",
    "river",
    "delta",
    "estuary",
    "lagoon",
    "cove",
    "inlet",
    "channel",
    "buoy",
    "keel",
    "mast",
    "rudder",
    "hull",
    "pebble",
    "dune",
    "gull",
    "heron",
    "kelp",
    "coral",
    "pearl",
]


#: Tokens generated between two yields to the event loop at full speed: a
#: short reply comes out in one go, as from an instant model; a long one lets
#: other turns and stop requests run every so often.
_BURST = 256


def scripted_words(request: GenerationRequest, count: int) -> list[str]:
    """The reply, as words, for a request: a pure function of the last user message."""
    question = next((m["content"] for m in reversed(request.messages) if m["role"] == "user"), "")
    quoted = question.split()[:8]
    words = ["You", "said:", *quoted] if quoted else ["Hello."]
    seed = int.from_bytes(hashlib.sha256(question.encode()).digest()[:8], "big")
    i = 0
    while len(words) < count:
        words.append(_VOCABULARY[(seed + i * 7) % len(_VOCABULARY)])
        i += 1
    return words[:count]


def _failure(status: int, message: str) -> TurnError:
    if status == 429:
        return BackendRateLimited(message)
    if 400 <= status < 500:
        return BackendError(message)
    return BackendUnavailable(message)


class ScriptedBackend:
    def __init__(self, spec: ScriptedModel) -> None:
        self.spec = spec

    def count_tokens(self, text: str) -> int | None:
        return None

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Delta]:
        spec = self.spec
        if spec.fail_on and any(spec.fail_on in m["content"] for m in request.messages):
            if spec.fail_status == CRASH_STATUS:
                # As a native crash in a model library would: no cleanup, no
                # hand-back; the turns this process held stay pending.
                os._exit(70)
            raise _failure(spec.fail_status, f"scripted failure ({spec.fail_status})")
        limit = min(spec.reply_tokens, request.max_tokens)
        words = scripted_words(request, spec.reply_tokens)
        if spec.first_token_delay:
            await asyncio.sleep(spec.first_token_delay)
        start = time.monotonic()
        emitted = 0
        for i, word in enumerate(words[:limit]):
            if spec.tokens_per_second > 0:
                delay = start + i / spec.tokens_per_second - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            elif i and i % _BURST == 0:
                await asyncio.sleep(0)
            emitted += 1
            yield Delta(text=word if i == 0 else " " + word)
        prompt_tokens = sum(estimate_tokens(m["content"]) for m in request.messages)
        yield Delta(
            finish_reason="length" if limit < spec.reply_tokens else "stop",
            usage=Usage(prompt_tokens=prompt_tokens, completion_tokens=emitted),
        )

    async def load(self) -> None:
        """Nothing to load: the text is made up as it goes."""

    async def aclose(self) -> None:
        return None
