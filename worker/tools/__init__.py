"""Tools (issue 15, docs/tools.md): the MCP client, the step checkpoint and
the multi-step tool loop a turn runs when its model has tools."""

from worker.tools.loop import ToolLoop, history_messages

__all__ = ["ToolLoop", "history_messages"]
