"""What the empty chat suggests trying: things the chosen model does well.

A models file may list ``suggestions`` for a model; without them a model gets
its backend's defaults. The local defaults are short questions that the
bundled Gemma 3 270M answers correctly (each is one of ``bench.quality``'s
questions; docs/benchmarks.md has its answers); a remote model, a real
assistant, gets longer tasks. ``GET /api/models`` serves them with each
model and the web client shows those of the model the new chat will use.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Suggestion(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: A few words on the card ("A quick fact").
    title: str = Field(min_length=1, max_length=60)
    #: What is sent when it is picked.
    prompt: str = Field(min_length=1, max_length=2000)


def _s(title: str, prompt: str) -> Suggestion:
    return Suggestion(title=title, prompt=prompt)


#: For a small local model: one-line questions with one right answer.
LOCAL = (
    _s("A quick fact", "What is the capital of France?"),
    _s("A little maths", "What is 5 times 6?"),
    _s("A word in another language", "Say hello in Spanish."),
    _s("Ask about nature", "Name an animal that can fly."),
)

#: For a capable remote model: tasks that show what an assistant can do.
GENERAL = (
    _s("Explain a concept", "Explain how ocean tides work, simply."),
    _s("Write some code", "Write a Python function that checks whether a string is a palindrome."),
    _s("Compare options", "Make a table comparing SQLite, PostgreSQL and Redis."),
    _s("Do some maths", "Derive the quadratic formula step by step."),
)

_BY_BACKEND = {"llamacpp": LOCAL, "hf": GENERAL}


def default_suggestions(backend: str) -> list[Suggestion]:
    """The suggestions of a model that lists none, by its backend."""
    return list(_BY_BACKEND.get(backend, GENERAL))
