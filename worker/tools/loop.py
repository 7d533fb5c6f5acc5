"""The multi-step tool loop of one turn (issue 15, docs/tools.md).

The model is offered the turn's tools; when it asks for some, the calls run
(concurrently, each through its MCP server) and their results go back to it,
until it answers without asking or ``max_steps`` model calls were made (the
last is offered no tools, so it must answer). Each step is checkpointed
(``checkpoint.py``) before the next begins: a worker taking the turn over
replays the recorded steps to the client, finishes the calls of a step that
was cut, and continues, never running a completed call twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis

from shared.conversation import Usage
from shared.keys import APPROVAL_POLL_S, Keys
from shared.protocol import ApprovalRequiredEvent, ToolCallEvent, ToolResultEvent
from shared.streams import SessionEvent, TurnRequest
from shared.tools import ServerSpec, ToolCall, ToolsFile, ToolStep, load_tools, step_messages
from worker.backends.base import Backend, GenerationRequest
from worker.generate import Outcome
from worker.tools.calls import assemble
from worker.tools.checkpoint import Checkpoint, Saved
from worker.tools.context import fit_steps, preview
from worker.tools.mcp_client import CallOutcome, McpTools

log = logging.getLogger(__name__)

#: Builds a step's request from its messages and the tools offered (None: none).
MakeRequest = Callable[[list[dict[str, Any]], list[dict[str, Any]] | None], GenerationRequest]
Generate = Callable[[GenerationRequest], Awaitable[Outcome]]
Send = Callable[[SessionEvent], Awaitable[None]]

INTERRUPTED = (
    "the worker running this call stopped before it reported back; it may or may "
    "not have taken effect, and was not run again"
)


class ToolLoop:
    def __init__(
        self, redis: Redis, keys: Keys, tools: ToolsFile, approval_timeout: float = 300.0
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.tools = tools
        self.approval_timeout = approval_timeout

    @classmethod
    def from_file(
        cls, redis: Redis, keys: Keys, path: str | None, approval_timeout: float = 300.0
    ) -> ToolLoop:
        return cls(redis, keys, load_tools(path), approval_timeout)

    def servers_for(self, model_id: str, backend: Backend) -> list[ServerSpec]:
        """The servers a turn of this model uses: none unless its backend
        can pass tools to the model."""
        if not getattr(backend, "supports_tools", False):
            return []
        return self.tools.for_model(model_id)

    async def run(
        self,
        turn: TurnRequest,
        servers: list[ServerSpec],
        base_messages: list[dict[str, Any]],
        make_request: MakeRequest,
        generate: Generate,
        send: Send,
        stop: asyncio.Event,
        room: int = 1 << 30,
    ) -> tuple[Outcome, list[ToolStep], Checkpoint]:
        """``room``: tokens of the context window left for this turn's own
        steps (``fit_steps``). Returns the checkpoint too: the reply is
        stored through it (``Checkpoint.store_reply``: fenced)."""
        checkpoint = Checkpoint(self.redis, self.keys, turn.turn_id, turn.conversation_id)
        saved = await checkpoint.claim(turn.user_id)
        async with McpTools(servers) as mcp:
            run = _Run(
                self.tools, turn, mcp, checkpoint, saved, send, stop, self.approval_timeout, room
            )
            await run.replay()
            outcome = await run.loop(base_messages, make_request, generate)
        return outcome, run.steps, checkpoint


class _Run:
    def __init__(
        self,
        tools: ToolsFile,
        turn: TurnRequest,
        mcp: McpTools,
        checkpoint: Checkpoint,
        saved: Saved,
        send: Send,
        stop: asyncio.Event,
        approval_timeout: float,
        room: int,
    ) -> None:
        self.tools = tools
        self.turn = turn
        self.mcp = mcp
        self.checkpoint = checkpoint
        self.steps = saved.steps
        self.in_flight = saved.in_flight
        self.send = send
        self.stop = stop
        self.usage: Usage | None = None
        self.approval_timeout = approval_timeout
        self.room = room

    async def replay(self) -> None:
        """After a takeover: the recorded steps' events again, so the client
        (told ``stream_restart``) shows what was done."""
        for index, step in enumerate(self.steps):
            for call in step.calls:
                await self._send_call(index, call)
                if call.status is not None:
                    await self._send_result(index, call)

    async def loop(
        self, base: list[dict[str, Any]], make_request: MakeRequest, generate: Generate
    ) -> Outcome:
        definitions = [tool.definition() for tool in self.mcp.offered]
        # After a takeover: the calls a recorded step left unfinished.
        for index, step in enumerate(self.steps):
            unfinished = any(c.status is None for c in step.calls)
            if unfinished and not await self._run_calls(index):
                return Outcome("", "stopped", self.usage)
        while True:
            index = len(self.steps)
            last = index >= self.tools.max_steps - 1
            offered = definitions if definitions and not last else None
            steps = fit_steps(step_messages(self.steps), self.room)
            request = make_request([*base, *steps], offered)
            outcome = await generate(request)
            self._count(outcome.usage)
            calls = assemble(outcome.tool_calls, index) if offered else []
            if not calls or outcome.finish_reason != "stop" or outcome.error is not None:
                # Only the delivery that still holds the turn answers it.
                await self.checkpoint.check()
                outcome.usage = self.usage
                return outcome
            step = ToolStep(
                text=outcome.text, calls=[self._call(c.id, c.name, c.arguments) for c in calls]
            )
            await self.checkpoint.save_step(index, step)
            self.steps.append(step)
            for call in step.calls:
                await self._send_call(index, call)
            if not await self._run_calls(index):
                return Outcome("", "stopped", self.usage)

    def _call(self, call_id: str, name: str, arguments: str) -> ToolCall:
        tool = self.mcp.find(name)
        if tool is None:
            server, _, tool_name = name.partition("__")
            return ToolCall(id=call_id, server=server, tool=tool_name or name, arguments=arguments)
        return ToolCall(id=call_id, server=tool.server.id, tool=tool.tool, arguments=arguments)

    def _count(self, usage: Usage | None) -> None:
        if usage is None:
            return
        if self.usage is None:
            self.usage = usage.model_copy()
        else:
            self.usage.prompt_tokens += usage.prompt_tokens
            self.usage.completion_tokens += usage.completion_tokens

    async def _run_calls(self, index: int) -> bool:
        """Every unfinished call of step ``index``, concurrently; False when
        the user stopped the turn meanwhile (the calls are cancelled)."""
        pending = [c for c in self.steps[index].calls if c.status is None]
        work: asyncio.Future[list[None]] = asyncio.gather(
            *(self._run_call(index, call) for call in pending)
        )
        stopper: asyncio.Future[Any] = asyncio.ensure_future(self.stop.wait())
        try:
            await asyncio.wait([work, stopper], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
            if not work.done():
                work.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await work
        if not self.stop.is_set():
            return True
        for call in pending:
            if call.status is None:  # cancelled in flight: the SDK told the server
                call.status = "stopped"
                call.result = "the user stopped the reply while this call ran"
        return False

    async def _run_call(self, index: int, call: ToolCall) -> None:
        tool = next(
            (t for t in self.mcp.offered if t.server.id == call.server and t.tool == call.tool),
            None,
        )
        if tool is None:
            outcome = CallOutcome("error", f"there is no tool {call.server}__{call.tool}", 0)
        elif (index, call.id) in self.in_flight and call.tool not in tool.server.idempotent:
            outcome = CallOutcome("interrupted", INTERRUPTED, 0)
        elif call.tool in tool.server.ask and (refused := await self._approval(index, call)):
            outcome = CallOutcome("denied", refused, 0)
        else:
            await self.checkpoint.start_call(index, call.id)
            outcome = await self.mcp.call(tool, call.arguments)
        call.status = outcome.status
        call.result = outcome.text[: self.tools.result_max_chars]
        call.duration_ms = outcome.duration_ms
        await self.checkpoint.finish_call(index, call)
        await self._send_result(index, call)

    async def _approval(self, index: int, call: ToolCall) -> str | None:
        """Wait for the user's answer to an "ask" call: None when approved,
        else why it is refused. The wait survives a takeover (the first
        ask's time is kept) and ends at ``approval_timeout``."""
        loop = asyncio.get_running_loop()
        asked = await self.checkpoint.ask(call.id, time.time())
        fields = self._call_fields(index, call)
        await self.send(ApprovalRequiredEvent(**fields, timeout_seconds=self.approval_timeout))
        deadline = loop.time() + max(0.0, asked + self.approval_timeout - time.time())
        while True:
            answer = await self.checkpoint.answer(call.id, self.turn.user_id)
            if answer is not None:
                return None if answer else "the user denied this call"
            if loop.time() >= deadline:
                return f"the user did not approve this call within {self.approval_timeout:g} s"
            # A paused turn polls its one hash field; a pause is rare and short.
            await asyncio.sleep(APPROVAL_POLL_S)

    def _call_fields(self, index: int, call: ToolCall) -> dict[str, Any]:
        """What ``tool_call`` and ``approval_required`` both say of a call."""
        return {
            "turn_id": self.turn.turn_id,
            "step": index,
            "call_id": call.id,
            "server": call.server,
            "tool": call.tool,
            "arguments": preview(call.arguments),
        }

    async def _send_call(self, index: int, call: ToolCall) -> None:
        await self.send(ToolCallEvent(**self._call_fields(index, call)))

    async def _send_result(self, index: int, call: ToolCall) -> None:
        assert call.status is not None
        await self.send(
            ToolResultEvent(
                turn_id=self.turn.turn_id,
                step=index,
                call_id=call.id,
                status=call.status,
                preview=preview(call.result),
                duration_ms=call.duration_ms,
            )
        )
