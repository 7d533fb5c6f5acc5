"""A tool turn's own steps within the model's context window (worker/tools/loop.py)."""

from __future__ import annotations

from shared.tools import ToolCall, ToolStep, step_messages
from worker.tools.context import DROPPED, fit_steps


def steps(*results: str) -> list[ToolStep]:
    return [
        ToolStep(
            calls=[
                ToolCall(id=f"c{i}", server="s", tool="t", arguments="{}", status="ok", result=r)
            ]
        )
        for i, r in enumerate(results)
    ]


def test_steps_that_fit_are_left_alone() -> None:
    messages = step_messages(steps("short", "also short"))
    assert fit_steps(messages, 10_000) is messages


def test_the_oldest_results_make_way_first_and_the_calls_stay() -> None:
    messages = step_messages(steps("x" * 4000, "y" * 4000, "z" * 400))
    fitted = fit_steps(messages, 1500)
    tools = [m["content"] for m in fitted if m["role"] == "tool"]
    assert tools == [DROPPED, "y" * 4000, "z" * 400]
    assert [m.get("tool_calls") for m in fitted] == [m.get("tool_calls") for m in messages]
    assert messages[1]["content"] == "x" * 4000  # the stored steps are not touched
    everything = fit_steps(messages, 10)
    assert [m["content"] for m in everything if m["role"] == "tool"] == [DROPPED] * 3
