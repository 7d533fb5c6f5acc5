"""The dialogue prompt a base model gets, without a model."""

from __future__ import annotations

from worker.backends.dialogue import ASSISTANT, EXAMPLES, PREAMBLE, STOP, USER, Dialogue
from worker.context import Framing


def test_the_conversation_is_a_transcript_after_the_preamble_and_examples() -> None:
    d = Dialogue(preamble="A chat.", examples=(("Hi?", "Hello."),))
    messages = [
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": "What is the capital of Spain?"},
        {"role": "assistant", "content": "Madrid."},
        {"role": "user", "content": "And of Germany?"},
    ]

    assert d.text(messages) == (
        "A chat.\nAnswer in French.\n\n"
        "User: Hi?\nAssistant: Hello.\n\n"
        "User: What is the capital of Spain?\nAssistant: Madrid.\n\n"
        "User: And of Germany?\nAssistant:"
    )
    assert d.text(messages, examples=False) == (
        "A chat.\nAnswer in French.\n\n"
        "User: What is the capital of Spain?\nAssistant: Madrid.\n\n"
        "User: And of Germany?\nAssistant:"
    )


def test_roles_are_merged_and_a_leading_reply_dropped() -> None:
    d = Dialogue(preamble="A chat.", examples=())
    messages = [
        {"role": "assistant", "content": "How can I help?"},
        {"role": "user", "content": "One"},
        {"role": "user", "content": "Two"},
    ]
    assert d.text(messages) == "A chat.\n\nUser: One\n\nTwo\nAssistant:"


def test_the_reply_ends_where_another_speaker_would_begin() -> None:
    assert f"\n{USER}" in STOP
    assert f"\n{ASSISTANT}" in STOP
    # Nothing the examples say may stop a reply that imitates them.
    for question, answer in EXAMPLES:
        assert not any(s in answer or s in question for s in STOP)


def test_framing_counts_the_preamble_always_and_the_examples_apart() -> None:
    def words(text: str) -> int:
        return len(text.split())

    framing = Dialogue().framing(words)

    assert framing == Framing(
        fixed=words(PREAMBLE) + 1 + 1,  # "Assistant:", and the BOS token
        optional=sum(words(f"{USER} {q}\n{ASSISTANT} {a}") for q, a in EXAMPLES),
    )
    assert Dialogue(examples=()).framing(words).optional == 0
