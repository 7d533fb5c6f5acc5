"""The dialogue prompt: how a base (pretrained, not chat-tuned) model is asked.

A base model has never seen a chat template; given one, it continues the
text it knows best, which is the question itself (measured with the bundled
Gemma 3 270M: "What is the capital of France?" came back as the question,
repeated). What it has seen is plain text, and a transcript is plain text:

    The following is a conversation between a user and ... assistant ...
    <the system prompt, if any>

    User: What is the largest planet in the solar system?
    Assistant: Jupiter.

    User: <the conversation, turn by turn>
    Assistant:

The examples show the length and tone of an answer; they are the first thing
left out when the conversation needs the room (see ``Framing`` in
``worker/context.py``). The reply ends where the model starts the user's next
line (the stop sequences), so it never writes the user's part.

The wording of the preamble and the examples was chosen by measurement with
``python -m bench.quality`` (docs/benchmarks.md), not by taste.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from worker.backends.llama_templates import Rendered, normalize_messages
from worker.context import Framing

USER = "User:"
ASSISTANT = "Assistant:"

PREAMBLE = (
    "The following is a conversation between a user and an assistant. The assistant is "
    "knowledgeable and helpful, and answers every question correctly in one short sentence."
)

#: (question, answer) pairs shown before the conversation: a fact, a sum and
#: an instruction, none of them one of the benchmark's questions.
EXAMPLES: tuple[tuple[str, str], ...] = (
    (
        "What is the largest planet in the solar system?",
        "Jupiter is the largest planet in the solar system.",
    ),
    ("What is 3 plus 4?", "3 plus 4 is 7."),
    ("Name a musical instrument.", "A piano."),
)

#: The model starting another speaker's line ends the reply. Matched in the
#: generated text and not shown.
STOP = ("\nUser:", "\nAssistant:")


def _exchange(question: str, answer: str) -> str:
    return f"{USER} {question}\n{ASSISTANT} {answer}\n\n"


@dataclass(frozen=True, slots=True)
class Dialogue:
    """The dialogue prompt format (see the module doc)."""

    preamble: str = PREAMBLE
    examples: tuple[tuple[str, str], ...] = EXAMPLES
    name: str = "dialogue (base model)"

    def head(self, system: str) -> str:
        """The preamble, with the system prompt folded in."""
        return self.preamble + ("\n" + system.strip() if system.strip() else "") + "\n\n"

    def example_text(self) -> str:
        return "".join(_exchange(q, a) for q, a in self.examples)

    def text(self, messages: list[dict[str, str]], *, examples: bool = True) -> str:
        """The whole prompt for a reply to the last user message."""
        turns = normalize_messages(messages, fold_system=False)
        system = turns.pop(0)["content"] if turns[0]["role"] == "system" else ""
        out = [self.head(system)]
        if examples:
            out.append(self.example_text())
        for turn in turns:
            speaker = USER if turn["role"] == "user" else ASSISTANT
            end = "\n" if turn["role"] == "user" else "\n\n"
            out.append(f"{speaker} {turn['content'].strip()}{end}")
        out.append(ASSISTANT)
        return "".join(out)

    def framing(self, count: Any) -> Framing:
        """What the format adds around the messages, in tokens of ``count``."""
        return Framing(
            fixed=count(self.head("") + ASSISTANT) + 1,  # + BOS
            optional=count(self.example_text()) if self.examples else 0,
        )

    def render(self, llm: Any, messages: list[dict[str, str]], room: int) -> Rendered:
        """The prompt's tokens: with the examples when they fit in ``room``
        tokens, else without them."""
        tokens: list[int] = []
        for examples in (True, False) if self.examples else (False,):
            text = self.text(messages, examples=examples)
            # special=False: text a user typed ("<start_of_turn>") stays text.
            tokens = llm.tokenize(text.encode("utf-8"), add_bos=True, special=False)
            if len(tokens) <= room:
                break
        return Rendered(tokens=tokens, stop=list(STOP), lstrip=True)
