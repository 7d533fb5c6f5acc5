"""Running the gateway under uvicorn, with a shutdown that says "going away"
and WebSockets that cannot be held open by a client that stops reading.

On SIGTERM uvicorn closes every open WebSocket itself (code 1012) before the
application's own shutdown runs, so the app never gets to say 1001. This
server closes tidechat's sockets with 1001 first: clients reconnect to
another gateway and resume.

A client that stops reading leaves the gateway's writes pending forever:
uvicorn waits for the transport to drain before each send, its keepalive
then "closes" a transport that still holds unsent data (which never
flushes), and the socket, its buffers and its handler stay for good.
``StallGuardProtocol`` drops such a connection (``transport.abort()``) once a
write has waited ``write_timeout`` seconds, after queuing a 1013 close for a
client that might still read it; the handler's pending send then fails and
it cleans up like any disconnect.

uvicorn configures its loggers when its config is made; the redacting
filter (no query strings, tokens or session ids in log lines) goes on their
handlers right after.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import Any

import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from gateway.frames import CLOSE_TRY_AGAIN
from shared import log_redact

log = logging.getLogger(__name__)


class StallGuardProtocol(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol, with a deadline on writes that do not complete."""

    #: Seconds a write may wait for the client to read (set per server by
    #: ``stall_guard``).
    write_timeout: float = 30.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._stall: asyncio.TimerHandle | None = None

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._stall is None:
            self._stall = self.loop.call_later(self.write_timeout, self._stalled)

    def resume_writing(self) -> None:
        super().resume_writing()
        self._cancel_stall()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_stall()
        super().connection_lost(exc)

    def keepalive_timeout(self) -> None:
        super().keepalive_timeout()
        # The close frame went behind unsent data the client will never read.
        if self.transport.get_write_buffer_size():
            self.transport.abort()

    def _cancel_stall(self) -> None:
        if self._stall is not None:
            self._stall.cancel()
            self._stall = None

    def _stalled(self) -> None:
        self._stall = None
        log.info(
            "dropping a WebSocket whose client has read nothing for %.0f s", self.write_timeout
        )
        if not self.close_sent:
            with contextlib.suppress(Exception):  # InvalidState: already closing
                self.conn.send_close(CLOSE_TRY_AGAIN, "not reading; reconnect and resume")
                self.transport.write(b"".join(self.conn.data_to_send()))
            self.close_sent = True
        self.transport.abort()


def stall_guard(write_timeout: float) -> type[StallGuardProtocol]:
    """The protocol class for one server, with its write deadline."""
    return type("StallGuard", (StallGuardProtocol,), {"write_timeout": write_timeout})


class GatewayServer(uvicorn.Server):
    def __init__(self, app: FastAPI, **options: Any) -> None:
        super().__init__(uvicorn.Config(app, **options))
        log_redact.install("uvicorn", "uvicorn.error", "uvicorn.access")
        self.fastapi_app = app

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        services = getattr(self.fastapi_app.state, "services", None)
        if services is not None:
            await services.sockets.close_all()
        await super().shutdown(sockets)


def serve(app: FastAPI, **options: Any) -> bool:
    """``uvicorn.run(app, **options)``, with the shutdown above. False when the
    app failed to start (uvicorn.run would exit with status 3 then)."""
    server = GatewayServer(app, **options)
    server.run()
    return server.started
