"""The ``approve`` frame (tools, issue 15): the user's answer to a call
waiting for approval, recorded for the worker (``shared/tool_approvals.py``)."""

from __future__ import annotations

from redis.asyncio import Redis

from gateway.errors import ApiError
from shared.keys import Keys
from shared.protocol import ApproveFrame, UserInfo
from shared.tool_approvals import Approvals


async def approve(redis: Redis, keys: Keys, user: UserInfo, frame: ApproveFrame) -> None:
    recorded = await Approvals(redis, keys).record(
        user.id, frame.turn_id, frame.call_id, frame.approve
    )
    if not recorded:
        raise ApiError("not_found", "no tool call is waiting for that approval")
