"""The context budget: what the model sees of a long conversation."""

from __future__ import annotations

from shared.conversation import Message
from shared.models_file import ScriptedModel
from shared.tokens import MESSAGE_OVERHEAD_TOKENS, estimate_tokens
from worker.context import SAFETY_MARGIN_TOKENS, Framing, build_prompt


def spec(window: int = 1024, reply: int = 256) -> ScriptedModel:
    return ScriptedModel(id="s", backend="scripted", context_window=window, max_tokens=reply)


def chat(n: int, size: int = 100) -> list[Message]:
    out = []
    parent = None
    for i in range(n):
        m = Message(
            id=f"m{i}",
            parent_id=parent,
            role="user" if i % 2 == 0 else "assistant",
            content=f"{i}:" + "x" * size,
        )
        out.append(m)
        parent = m.id
    return out


def budget(s: ScriptedModel) -> int:
    return s.context_window - s.max_tokens - SAFETY_MARGIN_TOKENS


def test_short_chat_is_sent_whole_with_the_system_prompt_first() -> None:
    branch = chat(5)
    prompt = build_prompt(spec(), "You are terse.", branch)
    assert prompt.messages[0] == {"role": "system", "content": "You are terse."}
    assert [m["content"] for m in prompt.messages[1:]] == [m.content for m in branch]
    assert prompt.dropped == 0
    assert prompt.notice is None


def test_long_chat_keeps_the_newest_messages_that_fit() -> None:
    s = spec()
    branch = chat(101)  # ends with a user message
    prompt = build_prompt(s, "sys", branch)
    assert prompt.tokens <= budget(s)
    assert prompt.dropped > 0
    assert prompt.messages[0]["role"] == "system"
    assert prompt.messages[-1]["content"] == branch[-1].content
    kept = [m["content"] for m in prompt.messages[1:]]
    # contiguous newest history, oldest dropped first, opening with the user
    assert kept == [m.content for m in branch[-len(kept) :]]
    assert prompt.messages[1]["role"] == "user"
    # and it is full: one more message would not have fitted
    next_older = branch[-len(kept) - 1]
    assert (
        prompt.tokens + estimate_tokens(next_older.content) + MESSAGE_OVERHEAD_TOKENS
        > budget(s) - 40
    )


def test_a_real_tokenizer_is_used_when_the_backend_has_one() -> None:
    s = spec()
    branch = chat(101)
    words = build_prompt(s, "", branch, count=lambda text: len(text))  # 1 token per char: fewer fit
    est = build_prompt(s, "", branch)
    assert len(words.messages) < len(est.messages)
    assert words.tokens <= budget(s)


def test_an_oversized_question_is_cut_with_a_notice_never_dropped() -> None:
    s = spec()
    huge = Message(id="q", role="user", content="word " * 5000)
    prompt = build_prompt(s, "Be kind.", [*chat(4), huge])
    assert prompt.messages[0]["content"] == "Be kind."
    last = prompt.messages[-1]
    assert last["role"] == "user"
    assert last["content"].startswith("word word")
    assert "message cut to fit" in last["content"]
    assert prompt.notice and "too long" in prompt.notice
    assert prompt.tokens <= budget(s)


def test_an_oversized_system_prompt_is_cut_but_kept() -> None:
    s = spec()
    prompt = build_prompt(s, "rule " * 4000, [Message(id="q", role="user", content="hello?")])
    assert prompt.messages[0]["role"] == "system"
    assert "message cut to fit" in prompt.messages[0]["content"]
    assert prompt.messages[-1]["content"] == "hello?"
    assert prompt.tokens <= budget(s)


def test_roles_alternate_even_after_a_failed_reply() -> None:
    branch = [
        Message(id="u1", role="user", content="first"),
        Message(id="a1", parent_id="u1", role="assistant", content="", finish_reason="error"),
        Message(id="u2", parent_id="a1", role="user", content="second"),
    ]
    prompt = build_prompt(spec(), "", branch)
    assert prompt.messages == [{"role": "user", "content": "first\n\nsecond"}]


# -- a prompt format's own text (a base model's dialogue preamble and examples)


def message_cost(m: Message) -> int:
    return estimate_tokens(m.content) + MESSAGE_OVERHEAD_TOKENS


def test_a_preamble_is_counted_so_fewer_messages_fit() -> None:
    s = spec()
    branch = chat(101)
    plain = build_prompt(s, "", branch)
    framed = build_prompt(s, "", branch, framing=Framing(fixed=200))

    assert framed.dropped > plain.dropped
    assert framed.tokens <= budget(s), "preamble and messages together fit"
    assert framed.tokens >= 200 + message_cost(branch[-1]), "the preamble is counted"


def test_examples_go_in_when_the_whole_conversation_fits_with_them() -> None:
    s = spec()
    branch = chat(5)
    prompt = build_prompt(s, "", branch, framing=Framing(fixed=30, optional=100))

    assert prompt.examples
    assert prompt.dropped == 0
    assert prompt.tokens == 30 + 100 + sum(message_cost(m) for m in branch)


def test_examples_are_dropped_before_any_message() -> None:
    s = spec()
    branch = chat(5)
    messages = sum(message_cost(m) for m in branch)
    # Room for the whole conversation, not for the examples too.
    optional = budget(s) - 30 - messages + 1
    prompt = build_prompt(s, "", branch, framing=Framing(fixed=30, optional=optional))

    assert not prompt.examples
    assert prompt.dropped == 0, "no message made way for the examples"
    assert prompt.tokens == 30 + messages


def test_no_examples_once_messages_are_dropped() -> None:
    s = spec()
    prompt = build_prompt(s, "", chat(101), framing=Framing(fixed=30, optional=1))

    assert prompt.dropped > 0
    assert not prompt.examples
    assert prompt.tokens <= budget(s)
