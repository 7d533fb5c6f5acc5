"""A GGUF model run in-process by llama-cpp-python: the embedded local backend.

Loading takes a second or more (and, the very first time, assembling the
bundled GGUF), so it runs in a thread, once, on first use. The worker calls
``await backend.load()`` when it starts, so the first user does not wait, and
again before building a prompt: ``count_tokens`` answers None (the caller
estimates) while the model is not loaded, because loading it there would block
the event loop.

One llama context runs one generation at a time, so ``stream()`` holds an
asyncio lock for the whole generation and a second turn waits for it. The
generation itself runs in a thread of its own (``llama_thread.py``) and hands
its pieces to the event loop through an asyncio queue. Closing the stream (the worker cancels the
task reading it when a user presses stop) sets an event that the thread checks
between tokens; while the prompt is being processed, which takes seconds for a
long prompt on a small CPU, a llama.cpp abort callback checks the same event,
so a stop takes effect within milliseconds either way. The thread releases the
lock itself when it has finished, so the next generation never starts while an
old one still uses the context.

While a turn waits for the lock or for prompt processing it yields empty
deltas every few seconds: a queue of turns behind one local model is progress,
not an upstream gone silent, and the worker's idle timeout must not retry it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from shared.models_file import LlamaCppModel
from worker.backends.base import Delta, GenerationRequest
from worker.backends.llama_load import open_model
from worker.backends.llama_templates import PromptFormat
from worker.backends.llama_thread import Failed, Finished, ThreadItem, ThreadJob, generate
from worker.context import Framing
from worker.errors import BackendUnavailable

log = logging.getLogger(__name__)

#: While a turn waits (for the model, or for its prompt to be processed), an
#: empty delta this often tells the worker the backend is alive.
KEEPALIVE_S = 5.0


class _Exited:
    """The thread has ended; after neither a finish nor a failure, it was
    interrupted from outside (``aclose``)."""


class _Keepalive:
    """Nothing came for a while: the reader yields an empty delta."""


_KEEPALIVE = _Keepalive()

_Item = ThreadItem | _Exited | _Keepalive


class LlamaCppBackend:
    """The ``llamacpp`` backend: ``LlamaCppBackend(spec, data_dir=settings.data_dir)``.

    ``data_dir`` is where the bundled model is assembled when ``spec.path`` is
    unset. Call ``await load()`` before building prompts (see the module doc).
    """

    def __init__(self, spec: LlamaCppModel, *, data_dir: Path) -> None:
        self.spec = spec
        self._data_dir = data_dir
        self._llm: Any = None
        self._format: PromptFormat | None = None
        self._framing: Framing | None = None
        self._loading: asyncio.Task[None] | None = None
        #: Held from the start of a generation until its thread has finished.
        self._busy = asyncio.Lock()
        self._running: threading.Event | None = None
        self._closed = False

    # -- loading ---------------------------------------------------------

    @property
    def loaded(self) -> bool:
        return self._llm is not None

    @property
    def prompt_format(self) -> PromptFormat | None:
        """How conversations become this model's prompt, once loaded."""
        return self._format

    def prompt_framing(self) -> Framing | None:
        """What the prompt format adds around the messages, for the context
        budget; None until loaded (like ``count_tokens``)."""
        return self._framing

    async def load(self) -> None:
        """Load the model (in a thread) unless it is loaded; safe to call often.

        Concurrent callers share one load, and a caller cancelled while
        waiting does not cancel it for the others. A failed load is tried
        again by the next call.
        """
        if self._llm is not None:
            return
        if self._closed:
            raise BackendUnavailable(f"the local model {self.spec.id} has been shut down")
        task = self._loading
        if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
            task = self._loading = asyncio.create_task(self._load())
            task.add_done_callback(_retrieve_exception)
        await asyncio.shield(task)

    async def _load(self) -> None:
        llm, prompt_format = await asyncio.to_thread(open_model, self.spec, self._data_dir)
        if self._closed:  # shut down while loading
            await asyncio.to_thread(llm.close)
            raise BackendUnavailable(f"the local model {self.spec.id} has been shut down")
        self._framing = prompt_format.framing(lambda text: _token_count(llm, text))
        self._llm, self._format = llm, prompt_format

    # -- the Backend protocol --------------------------------------------

    def count_tokens(self, text: str) -> int | None:
        """Tokens by the model's own tokenizer; None until ``load()`` has run."""
        llm = self._llm
        if llm is None:
            return None
        return _token_count(llm, text)

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Delta]:
        await self.load()
        llm, prompt_format = self._llm, self._format
        assert prompt_format is not None
        messages = request.messages

        waiter = asyncio.ensure_future(self._busy.acquire())
        try:
            while not waiter.done():
                await asyncio.wait({waiter}, timeout=KEEPALIVE_S)
                if not waiter.done():
                    yield Delta()
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._busy.release()
            else:
                waiter.cancel()
            raise
        if self._closed:
            self._busy.release()
            raise BackendUnavailable(f"the local model {self.spec.id} has been shut down")

        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[_Item] = asyncio.Queue()
        cancel = threading.Event()
        finished: asyncio.Future[None] = loop.create_future()

        def emit(item: _Item) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the event loop is gone: nobody is reading
                cancel.set()

        def on_thread_exit() -> None:
            self._running = None
            self._busy.release()
            queue.put_nowait(_Exited())
            if not finished.done():
                finished.set_result(None)

        def run() -> None:
            try:
                generate(ThreadJob(llm, prompt_format, self.spec, messages, request, cancel, emit))
            finally:
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(on_thread_exit)

        thread = threading.Thread(target=run, name=f"llamacpp-{self.spec.id}", daemon=True)
        try:
            thread.start()
        except BaseException:
            self._busy.release()
            raise
        self._running = cancel
        # One timer every KEEPALIVE_S, not one per token: a keepalive goes in
        # the queue when nothing else came since the last tick.
        quiet = True
        ticker: asyncio.TimerHandle

        def tick() -> None:
            nonlocal quiet, ticker
            if quiet:
                queue.put_nowait(_KEEPALIVE)
            quiet = True
            ticker = loop.call_later(KEEPALIVE_S, tick)

        ticker = loop.call_later(KEEPALIVE_S, tick)
        try:
            while True:
                item = await queue.get()
                if item is _KEEPALIVE:
                    yield Delta()
                    continue
                quiet = False
                if isinstance(item, str):
                    yield Delta(text=item)
                elif isinstance(item, Finished):
                    yield Delta(finish_reason=item.finish_reason, usage=item.usage)
                    return
                elif isinstance(item, Failed):
                    raise item.error
                else:
                    raise BackendUnavailable(
                        f"the local model {self.spec.id} was shut down during the reply"
                    )
        finally:
            ticker.cancel()
            cancel.set()
            # The thread stops at its next token (or aborts prompt processing);
            # the turn is over only when it has, so a stop waits for it.
            await asyncio.shield(finished)

    async def aclose(self) -> None:
        """Stop a running generation, wait for it, and free the model."""
        self._closed = True
        if self._running is not None:
            self._running.set()
        if self._loading is not None and not self._loading.done():
            with contextlib.suppress(Exception):
                await asyncio.shield(self._loading)
        async with self._busy:
            llm, self._llm = self._llm, None
            if llm is not None:
                await asyncio.to_thread(llm.close)


def _token_count(llm: Any, text: str) -> int:
    return len(llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))


def _retrieve_exception(task: asyncio.Task[Any]) -> None:
    # A load whose every waiter was cancelled must not log "exception never retrieved".
    if not task.cancelled():
        task.exception()
