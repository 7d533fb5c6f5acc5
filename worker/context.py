"""The context budget: which part of a conversation the model sees.

The prompt gets the model's context window minus the reply budget
(``max_tokens``) minus a small safety margin. Into it go, in this order of
priority: the system prompt, the new user message (neither is ever dropped;
either is cut, with a visible notice, if it alone does not fit), then as many
of the newest earlier messages on the branch as fit, oldest dropped first.
Consecutive messages of the same role are joined, so every chat template
sees strictly alternating turns.

A prompt format may add text of its own around the messages (``Framing``): a
base model's dialogue prompt has a preamble, always counted, and example
exchanges, which go in only when the whole conversation fits with them: they
are the first thing dropped when space runs out, before any message.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared.conversation import Message
from shared.models_file import ModelSpec
from shared.tokens import MESSAGE_OVERHEAD_TOKENS, estimate_tokens

TokenCounter = Callable[[str], int]
#: Tools (issue 15): an earlier reply with tool steps as the chat messages
#: the model sees (assistant ``tool_calls``, ``tool`` results, the answer).
Expander = Callable[[Message], list[dict[str, Any]]]
#: A backend's tokenizer: None when it has none (then the estimate is used).
BackendCounter = Callable[[str], int | None]

#: Tokens held back beyond the reply budget, for template tokens the
#: per-message overhead does not cover and for estimate error.
SAFETY_MARGIN_TOKENS = 32
#: Of a budget that cannot hold both, the share a long system prompt may keep.
SYSTEM_PROMPT_SHARE = 0.5


@dataclass(frozen=True, slots=True)
class Framing:
    """Tokens a prompt format adds beyond each message's own text and role
    markers (``MESSAGE_OVERHEAD_TOKENS``)."""

    #: Always in the prompt (a preamble).
    fixed: int = 0
    #: In the prompt only when everything else fits with it (examples).
    optional: int = 0


@dataclass(slots=True)
class Prompt:
    messages: list[dict[str, Any]]
    tokens: int
    #: Messages of the branch left out because they did not fit.
    dropped: int = 0
    #: Shown to the user when a message had to be cut.
    notice: str | None = None
    #: Whether the format's optional framing (the examples) fits too.
    examples: bool = False


def truncation_marker(kept: int, total: int) -> str:
    return f"\n\n[... message cut to fit the model's context: {kept} of {total} characters kept]"


def cut_to_tokens(text: str, limit: int, count: TokenCounter) -> str:
    """The longest prefix of ``text`` that fits ``limit`` tokens with the marker."""
    if count(text) <= limit:
        return text
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if count(text[:mid] + truncation_marker(mid, len(text))) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo] + truncation_marker(lo, len(text))


def _plain(message: dict[str, Any]) -> bool:
    return set(message) == {"role", "content"}


def _merge_same_roles(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    merged: list[dict[str, Any]] = []
    for m in messages:
        # Tool messages (issue 15) are never merged: they carry ids.
        if merged and merged[-1]["role"] == m["role"] and _plain(m) and _plain(merged[-1]):
            merged[-1] = {
                "role": m["role"],
                "content": merged[-1]["content"] + "\n\n" + m["content"],
            }
        else:
            merged.append(dict(m))
    return merged


def build_prompt(
    spec: ModelSpec,
    system_prompt: str,
    branch: list[Message],
    count: BackendCounter | None = None,
    framing: Framing | None = None,
    expand: Expander | None = None,
    *,
    complete: bool = True,
) -> Prompt:
    """The model input for a reply to the last message of ``branch``;
    ``framing``: what the backend's prompt format adds (``prompt_framing``).
    ``complete``: ``branch`` reaches the conversation's root (the store's
    walk stops once the context is surely full; older messages exist).
    ``expand`` (a turn with tools): how a reply with tool steps is shown."""

    def counter(text: str) -> int:
        counted = count(text) if count is not None else None
        return counted if counted is not None else estimate_tokens(text)

    def cost(text: str) -> int:
        return counter(text) + MESSAGE_OVERHEAD_TOKENS

    frame = framing or Framing()
    budget = max(spec.context_window - spec.max_tokens - SAFETY_MARGIN_TOKENS - frame.fixed, 64)
    # Failed replies with no text say nothing to the model; what moderation
    # blocked never reaches it.
    usable = [m for m in branch if (m.content or m.role == "user") and not m.blocked]
    if not usable:
        raise ValueError("a turn needs a user message to answer")
    question = usable[-1]
    history = usable[:-1]

    notices: list[str] = []
    system = system_prompt.strip()
    question_text = question.content
    system_cost = cost(system) if system else 0
    question_cost = cost(question_text)
    if system_cost + question_cost > budget:
        if system and system_cost > budget * SYSTEM_PROMPT_SHARE and question_cost < budget:
            room = max(budget - question_cost, int(budget * SYSTEM_PROMPT_SHARE))
            system = cut_to_tokens(system, room - MESSAGE_OVERHEAD_TOKENS, counter)
            system_cost = cost(system)
            notices.append("The system prompt was cut to fit the model's context window.")
        if system_cost + question_cost > budget:
            room = budget - system_cost - MESSAGE_OVERHEAD_TOKENS
            question_text = cut_to_tokens(question_text, max(room, 16), counter)
            question_cost = cost(question_text)
            notices.append(
                "Your message was too long for the model's context window; "
                "only its beginning was sent."
            )

    used = system_cost + question_cost
    kept: list[dict[str, Any]] = []
    everything = complete
    for message in reversed(history):
        items: list[dict[str, Any]] = (
            expand(message)
            if expand is not None and message.steps
            else [{"role": message.role, "content": message.content}]
        )
        c = sum(cost(i["content"] if _plain(i) else json.dumps(i)) for i in items)
        if used + c > budget:
            everything = False
            break
        kept.extend(reversed(items))
        used += c
    kept.reverse()
    # A chat should open with the user speaking after the system prompt.
    while kept and kept[0]["role"] != "user":
        dropped = kept.pop(0)
        used -= cost(dropped["content"] if _plain(dropped) else json.dumps(dropped))

    # The examples only when no message had to make way for them.
    examples = everything and not notices and used + frame.optional <= budget
    used += frame.fixed + (frame.optional if examples else 0)

    messages: list[dict[str, Any]] = []
    if system:
        messages.append({"role": "system", "content": system})
    messages.extend(_merge_same_roles([*kept, {"role": "user", "content": question_text}]))
    return Prompt(
        messages=messages,
        tokens=used,
        dropped=len(history) - len(kept),
        notice=" ".join(notices) or None,
        examples=examples,
    )
