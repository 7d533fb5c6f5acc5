"""Answer quality of the local model: a fixed set of simple questions, each
reply scored for what a newcomer notices in the first five minutes.

    python -m bench.quality                     # the bundled model, its configured settings
    python -m bench.quality --temperature 0     # greedy decoding (what the test checks)
    python -m bench.quality --show              # print every reply
    python -m bench.quality --model PATH.gguf --prompt-format chat

Every question goes through the worker's own path: the context budget
(``worker/context.py``) and the llamacpp backend, in this process, with a
fixed seed per question, so a run is repeatable. Follow-up questions are
asked after the model's own replies to the turns before them.

Each reply is scored for:

- **echo**: it starts by repeating the question (the base model's worst habit
  under a chat template);
- **keyword**: it contains one of the expected words ("Paris");
- **clean stop**: it ended by itself (not at the token limit) without
  writing the user's next line or a role marker;
- **length**: words and tokens.

The questions, the scoring and the run are also what
``tests/worker/test_answer_quality.py`` uses.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from shared.conversation import Message, new_id
from shared.local_model import bundled_model_path
from shared.models_file import LlamaCppModel, bundled_model, gguf_model
from shared.paths import default_data_dir
from worker.backends.base import GenerationRequest, prompt_framing
from worker.backends.llamacpp import LlamaCppBackend
from worker.context import build_prompt

Kind = Literal["fact", "arithmetic", "instruction", "follow-up"]


@dataclass(frozen=True, slots=True)
class Question:
    ask: str
    #: Any one of these (whole words, case-insensitive) counts as on topic.
    keywords: tuple[str, ...]
    kind: Kind
    #: Earlier user turns of the same conversation; the model answers each first.
    before: tuple[str, ...] = ()


QUESTIONS: tuple[Question, ...] = (
    Question("What is the capital of France?", ("paris",), "fact"),
    Question("What is the capital of Japan?", ("tokyo",), "fact"),
    Question("What is the largest ocean on Earth?", ("pacific",), "fact"),
    Question("Who wrote Romeo and Juliet?", ("shakespeare",), "fact"),
    Question("Which planet is known as the Red Planet?", ("mars",), "fact"),
    Question("What is the chemical formula of water?", ("h2o",), "fact"),
    Question("How many legs does a spider have?", ("eight", "8"), "fact"),
    Question("What gas do plants take in from the air?", ("carbon dioxide", "co2"), "fact"),
    Question("At what temperature in Celsius does water boil?", ("100",), "fact"),
    Question("Which animal is called the king of the jungle?", ("lion", "lions"), "fact"),
    Question("What language do people speak in Brazil?", ("portuguese",), "fact"),
    Question("What is the tallest mountain in the world?", ("everest",), "fact"),
    Question("Who painted the Mona Lisa?", ("leonardo", "da vinci"), "fact"),
    Question("What is the opposite of hot?", ("cold",), "fact"),
    Question("What colour do you get by mixing blue and yellow?", ("green",), "fact"),
    Question("What is 2 + 2?", ("4", "four"), "arithmetic"),
    Question("What is 10 minus 3?", ("7", "seven"), "arithmetic"),
    Question("What is 5 times 6?", ("30", "thirty"), "arithmetic"),
    Question("What is 100 divided by 4?", ("25", "twenty-five", "twenty five"), "arithmetic"),
    Question("How many minutes are in an hour?", ("60", "sixty"), "arithmetic"),
    Question("How many hours are in a day?", ("24", "twenty-four", "twenty four"), "arithmetic"),
    Question("Say hello in Spanish.", ("hola",), "instruction"),
    Question("Name a primary colour.", ("red", "blue", "yellow"), "instruction"),
    Question(
        'Give me a word that means the same as "happy".',
        ("glad", "joyful", "cheerful", "content", "pleased", "delighted", "joyous", "merry"),
        "instruction",
    ),
    Question('Translate "thank you" into French.', ("merci",), "instruction"),
    Question(
        "Name a fruit that is yellow.", ("banana", "bananas", "lemon", "lemons"), "instruction"
    ),
    Question('What is the plural of "mouse"?', ("mice",), "instruction"),
    Question(
        "Name an animal that can fly.",
        ("bird", "birds", "bat", "bats", "eagle", "eagles"),
        "instruction",
    ),
    Question("What is my name?", ("sam",), "follow-up", before=("Hi! My name is Sam.",)),
    Question(
        "And of Germany?", ("berlin",), "follow-up", before=("What is the capital of Spain?",)
    ),
)


# -- scoring ------------------------------------------------------------------


def words(text: str) -> list[str]:
    """Lower-case words and numbers, punctuation dropped."""
    return re.findall(r"[a-z0-9]+", text.lower())


#: How many of the question's first words make an echo, and how far into the
#: reply they may start ("Q: What is ...", "User: What is ...").
_ECHO_WORDS = 6
_ECHO_START = 3


def echoes(question: str, reply: str) -> bool:
    """Whether the reply starts by repeating the question."""
    q = words(question)[:_ECHO_WORDS]
    r = words(reply)
    if not q:
        return False
    return any(r[i : i + len(q)] == q for i in range(_ECHO_START + 1))


def has_keyword(reply: str, keywords: tuple[str, ...]) -> bool:
    text = " " + " ".join(words(reply)) + " "
    return any(f" {' '.join(words(k))} " in text for k in keywords)


#: A line the model starts as another speaker: it went on writing the dialogue.
_ROLE_LINE = re.compile(r"(?im)^\s*(user|assistant|human|ai|q|a|question|answer)\s*:")
_TEMPLATE_TOKENS = ("<start_of_turn>", "<end_of_turn>", "<eos>", "<bos>")


def stops_cleanly(reply: str, finish: str) -> bool:
    """Ended by itself, said something, and wrote no other speaker's line."""
    return (
        finish == "stop"
        and bool(reply.strip())
        and not _ROLE_LINE.search(reply)
        and not any(t in reply for t in _TEMPLATE_TOKENS)
    )


@dataclass(slots=True)
class Scored:
    ask: str
    kind: Kind
    reply: str
    finish: str
    tokens: int
    seconds: float
    echo: bool
    keyword: bool
    clean: bool

    @property
    def words(self) -> int:
        return len(self.reply.split())


@dataclass(slots=True)
class Summary:
    questions: int
    echo_rate: float
    keyword_rate: float
    clean_rate: float
    median_words: float
    max_words: int
    mean_tokens: float
    seconds: float


def summarize(results: list[Scored]) -> Summary:
    n = len(results)
    return Summary(
        questions=n,
        echo_rate=sum(r.echo for r in results) / n,
        keyword_rate=sum(r.keyword for r in results) / n,
        clean_rate=sum(r.clean for r in results) / n,
        median_words=statistics.median(r.words for r in results),
        max_words=max(r.words for r in results),
        mean_tokens=statistics.mean(r.tokens for r in results),
        seconds=sum(r.seconds for r in results),
    )


# -- running ------------------------------------------------------------------


async def _reply(
    backend: LlamaCppBackend, branch: list[Message], seed: int
) -> tuple[str, str, int, float]:
    """(text, finish reason, completion tokens, seconds) of one reply, built
    as the worker builds it."""
    spec = backend.spec
    prompt = build_prompt(spec, "", branch, backend.count_tokens, prompt_framing(backend))
    request = GenerationRequest(
        messages=prompt.messages,
        max_tokens=spec.max_tokens,
        temperature=spec.temperature,
        top_p=spec.top_p,
        stop=list(spec.stop),
        seed=seed,
    )
    parts: list[str] = []
    finish, tokens = "error", 0
    start = time.perf_counter()
    stream = backend.stream(request)
    try:
        async for delta in stream:
            parts.append(delta.text)
            if delta.finish_reason is not None:
                finish = delta.finish_reason
                tokens = delta.usage.completion_tokens if delta.usage else 0
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
    # The worker stores the reply as streamed; only surrounding blanks are
    # what a user would not see.
    return "".join(parts).strip(), finish, tokens, time.perf_counter() - start


def _message(role: Literal["user", "assistant"], content: str, parent: str | None) -> Message:
    return Message(id=new_id(), parent_id=parent, role=role, content=content)


async def ask(backend: LlamaCppBackend, question: Question, seed: int) -> Scored:
    branch: list[Message] = []
    parent: str | None = None
    for earlier in question.before:
        branch.append(_message("user", earlier, parent))
        text, *_ = await _reply(backend, branch, seed)
        branch.append(_message("assistant", text, branch[-1].id))
        parent = branch[-1].id
    branch.append(_message("user", question.ask, parent))
    text, finish, tokens, seconds = await _reply(backend, branch, seed)
    return Scored(
        ask=question.ask,
        kind=question.kind,
        reply=text,
        finish=finish,
        tokens=tokens,
        seconds=seconds,
        echo=echoes(question.ask, text),
        keyword=has_keyword(text, question.keywords),
        clean=stops_cleanly(text, finish),
    )


@dataclass(slots=True)
class Run:
    results: list[Scored]
    #: The prompt format the backend chose, for the report.
    prompt_format: str


async def run(spec: LlamaCppModel, data_dir: Path, seed: int = 17) -> Run:
    """Every question, in order, on one loaded model."""
    backend = LlamaCppBackend(spec, data_dir=data_dir)
    await backend.load()
    try:
        results = [await ask(backend, q, seed + i) for i, q in enumerate(QUESTIONS)]
        prompt_format = backend.prompt_format
        return Run(results, prompt_format.name if prompt_format else "?")
    finally:
        await backend.aclose()


def model_spec(data_dir: Path, model: Path | None = None, **overrides: object) -> LlamaCppModel:
    """The local model as a user gets it: the bundled one with its settings,
    or ``model`` as ``tidechat up --model`` runs it; with ``overrides``."""
    base = gguf_model(model) if model else bundled_model()
    fields = base.model_dump(exclude_unset=False)
    fields.update({k: v for k, v in overrides.items() if v is not None})
    if fields.get("path") is None:
        fields["path"] = str(bundled_model_path(data_dir, progress=True))
    return LlamaCppModel.model_validate(fields)


# -- report -------------------------------------------------------------------


def _row(r: Scored, width: int = 60) -> str:
    flags = ("ECHO " if r.echo else "") + ("" if r.keyword else "no-keyword ")
    flags += "" if r.clean else f"unclean({r.finish}) "
    reply = r.reply.replace("\n", "⏎")
    reply = reply if len(reply) <= width else reply[: width - 1] + "…"
    return f"{r.ask[:44]:<44} {r.tokens:>4} {reply:<{width}} {flags}"


def report(outcome: Run, spec: LlamaCppModel, show: bool) -> str:
    results, prompt_format = outcome.results, outcome.prompt_format
    s = summarize(results)
    lines = []
    if show:
        lines += [_row(r) for r in results] + [""]
    lines += [
        f"{spec.id} ({prompt_format}): temperature {spec.temperature}, "
        f"repeat penalty {spec.repeat_penalty}, max_tokens {spec.max_tokens}, "
        f"{s.questions} questions",
        f"echoes the question   {s.echo_rate:6.0%}",
        f"expected keyword      {s.keyword_rate:6.0%}",
        f"stops cleanly         {s.clean_rate:6.0%}",
        f"words (median / max)  {s.median_words:6.0f} / {s.max_words}",
        f"tokens (mean)         {s.mean_tokens:6.1f}",
        f"generation time       {s.seconds:6.1f} s",
    ]
    by_kind: dict[str, list[Scored]] = {}
    for r in results:
        by_kind.setdefault(r.kind, []).append(r)
    lines.append(
        "keyword by kind       "
        + ", ".join(f"{k} {sum(x.keyword for x in rs)}/{len(rs)}" for k, rs in by_kind.items())
    )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, help="a GGUF file (default: the bundled model)")
    parser.add_argument(
        "--prompt-format", choices=["chat", "dialogue"], help="default: from the GGUF"
    )
    parser.add_argument("--temperature", type=float)
    parser.add_argument("--repeat-penalty", type=float)
    parser.add_argument("--max-tokens", type=int)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--seed", type=int, default=17, help="first question's seed")
    parser.add_argument("--show", action="store_true", help="print every reply")
    parser.add_argument("--json", action="store_true", help="the results as JSON")
    args = parser.parse_args()

    data_dir = default_data_dir()
    spec = model_spec(
        data_dir,
        args.model,
        prompt_format=args.prompt_format,
        temperature=args.temperature,
        repeat_penalty=args.repeat_penalty,
        max_tokens=args.max_tokens,
        threads=args.threads,
    )
    outcome = asyncio.run(run(spec, data_dir, args.seed))
    results = outcome.results
    if args.json:
        print(
            json.dumps(
                {
                    "spec": spec.model_dump(),
                    "prompt_format": outcome.prompt_format,
                    "summary": asdict(summarize(results)),
                    "results": [asdict(r) for r in results],
                },
                indent=2,
            )
        )
    else:
        print(report(outcome, spec, args.show))
    return 0


if __name__ == "__main__":
    sys.exit(main())
