"""A WebSocket client that sends but never reads: the attacker of issue 18's
socket findings (bench.isolation, tests/e2e/test_socket_memory.py). A plain
TCP socket with a tiny receive buffer does the upgrade, then only writes
frames; the server's writes to it pile up until its own buffers are full (a
library client would read in the background)."""

from __future__ import annotations

import base64
import json
import os
import socket
from typing import Any
from urllib.parse import urlsplit

from websockets.frames import Frame, Opcode


class DeafSocket:
    def __init__(self, ws_url: str, token: str, session: str | None = None) -> None:
        url = urlsplit(ws_url)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.settimeout(10)
        self.sock.connect((url.hostname or "127.0.0.1", url.port or 80))
        path = url.path + (f"?session={session}" if session else "")
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {url.netloc}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n\r\n"
        )
        self.sock.sendall(request.encode())
        head = b""
        while b"\r\n\r\n" not in head:  # the only read this client ever does
            chunk = self.sock.recv(1)
            if not chunk:
                raise ConnectionError("closed during the upgrade")
            head += chunk
        if not head.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(head.decode(errors="replace"))

    def send(self, frame: dict[str, Any]) -> None:
        data = Frame(Opcode.TEXT, json.dumps(frame).encode()).serialize(mask=True)
        self.sock.sendall(data)

    def dropped(self) -> bool:
        """Whether the server has dropped the connection (a reset; a deaf
        client never reads the close frame or the EOF behind its data)."""
        try:
            self.sock.sendall(Frame(Opcode.PING, b"").serialize(mask=True))
        except OSError:
            return True
        return False

    def close(self) -> None:
        self.sock.close()
