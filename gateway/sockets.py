"""The WebSockets this gateway process holds, and what is counted about them
(for ``/metrics`` and ``/ready``): the connection route registers each
socket here, shutdown closes them all through it, and nothing else keeps
mutable counters about sockets."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from fastapi import WebSocket
from starlette.websockets import WebSocketState

from gateway.frames import CLOSE_GOING_AWAY


class SocketRegistry:
    def __init__(self) -> None:
        self._sockets: set[WebSocket] = set()
        #: Sockets that resumed a session (a first ``resume`` frame, or a later one).
        self.resumes = 0

    def __len__(self) -> int:
        return len(self._sockets)

    def __iter__(self) -> Iterator[WebSocket]:
        return iter(list(self._sockets))

    def add(self, ws: WebSocket) -> None:
        self._sockets.add(ws)

    def discard(self, ws: WebSocket) -> None:
        self._sockets.discard(ws)

    def resumed(self) -> None:
        self.resumes += 1

    async def close_all(self) -> None:
        """On shutdown: tell every client to go elsewhere (it reconnects and resumes)."""
        for ws in self:
            if ws.client_state == WebSocketState.CONNECTED:
                with contextlib.suppress(Exception):
                    await ws.close(CLOSE_GOING_AWAY, "server shutting down")
