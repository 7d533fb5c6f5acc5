"""Tools (issue 15, docs/tools.md): the MCP client, the step checkpoint and
the multi-step tool loop a turn runs when its model has tools."""

from worker.tools.context import history_messages
from worker.tools.loop import ToolLoop

__all__ = ["ToolLoop", "history_messages"]
