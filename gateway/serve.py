"""Running the gateway under uvicorn, with a shutdown that says "going away".

On SIGTERM uvicorn closes every open WebSocket itself (code 1012) before the
application's own shutdown runs, so the app never gets to say 1001. This
server closes tidechat's sockets with 1001 first: clients reconnect to
another gateway and resume.
"""

from __future__ import annotations

import socket
from typing import Any

import uvicorn
from fastapi import FastAPI

from gateway.routes.ws import close_all


class GatewayServer(uvicorn.Server):
    def __init__(self, app: FastAPI, **options: Any) -> None:
        super().__init__(uvicorn.Config(app, **options))
        self.fastapi_app = app

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        services = getattr(self.fastapi_app.state, "services", None)
        if services is not None:
            await close_all(services)
        await super().shutdown(sockets)


def serve(app: FastAPI, **options: Any) -> bool:
    """``uvicorn.run(app, **options)``, with the shutdown above. False when the
    app failed to start (uvicorn.run would exit with status 3 then)."""
    server = GatewayServer(app, **options)
    server.run()
    return server.started
