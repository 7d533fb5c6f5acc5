"""What the model reads of tool steps: an earlier reply's steps in a later
turn's context (``history_messages``), this turn's own steps fitted to the
context window (``fit_steps``), and the bounded previews clients are shown."""

from __future__ import annotations

import json
from typing import Any

from shared.conversation import Message
from shared.keys import TOOL_PREVIEW_CHARS
from shared.tokens import MESSAGE_OVERHEAD_TOKENS, estimate_tokens
from shared.tools import step_messages


def history_messages(message: Message) -> list[dict[str, Any]]:
    """An earlier reply with tool steps as the model sees it in a later
    turn's context: its steps in OpenAI tool-message form, then its answer."""
    return [
        *step_messages(message.steps or []),
        {"role": message.role, "content": message.content},
    ]


#: What the model reads instead of a result that did not fit its context.
DROPPED = "[this result was dropped to fit the model's context window]"


def _cost(message: dict[str, Any]) -> int:
    return estimate_tokens(json.dumps(message, ensure_ascii=False)) + MESSAGE_OVERHEAD_TOKENS


def fit_steps(messages: list[dict[str, Any]], room: int) -> list[dict[str, Any]]:
    """A turn's own step messages within ``room`` tokens: past it, the
    oldest tool results are replaced by a short note (the calls themselves
    stay, so the model knows what it asked)."""
    cost = sum(_cost(m) for m in messages)
    if cost <= room:
        return messages
    fitted = [dict(m) for m in messages]
    for message in fitted:
        if cost <= room:
            break
        if message["role"] == "tool" and message["content"] != DROPPED:
            before = _cost(message)
            message["content"] = DROPPED
            cost -= before - _cost(message)
    return fitted


def preview(text: str) -> str:
    return text if len(text) <= TOOL_PREVIEW_CHARS else text[:TOOL_PREVIEW_CHARS] + "…"
