"""A small WebSocket chat client for tests: collects every frame, waits on
conditions with timeouts (never sleeps), and assembles streamed text the
way a client does (restart discards, stream_end's content is the truth)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

Event = dict[str, Any]


def reply_text(frames: list[Event], turn_id: str, *, use_stream_end: bool = True) -> str:
    """A turn's text as a client reducer builds it from ``frames``."""
    text = ""
    for f in frames:
        if f.get("turn_id") != turn_id:
            continue
        if f["type"] in ("stream_start", "stream_restart"):
            text = ""
        elif f["type"] == "stream_chunk":
            text += f["chunk"]
        elif f["type"] == "stream_end" and use_stream_end:
            text = f["message"]["content"]
    return text


class ChatSocket:
    def __init__(self, conn: ClientConnection) -> None:
        self.conn = conn
        self.frames: list[Event] = []
        self._changed = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())
        self.closed: asyncio.Event = asyncio.Event()
        self.close_code: int | None = None

    @classmethod
    async def connect(
        cls,
        ws_url: str,
        token: str | None,
        session: str | None = None,
        *,
        cookie: str | None = None,
        origin: str | None = None,
        session_protocol: str | None = None,
    ) -> ChatSocket:
        """A socket signed in with a bearer ``token`` (as scripts do) or a
        ``cookie`` (as browsers do). ``session`` travels in the query string
        (scripts); ``session_protocol`` in ``Sec-WebSocket-Protocol`` (the web
        client's way, which keeps it out of URLs and their logs)."""
        url = ws_url + (f"?session={session}" if session else "")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if cookie:
            headers["Cookie"] = f"tc_session={cookie}"
        protocols = (
            ["tidechat", f"tidechat.session.{session_protocol}"] if session_protocol else None
        )
        conn = await websockets.connect(
            url,
            additional_headers=headers,
            max_size=2**24,
            origin=origin,  # type: ignore[arg-type]
            subprotocols=protocols,  # type: ignore[arg-type]
        )
        return cls(conn)

    async def _read(self) -> None:
        try:
            async for raw in self.conn:
                frame = json.loads(raw)
                async with self._changed:
                    self.frames.append(frame)
                    self._changed.notify_all()
        except websockets.ConnectionClosed:
            pass
        finally:
            self.close_code = self.conn.close_code
            self.closed.set()
            async with self._changed:
                self._changed.notify_all()

    async def send(self, frame: Event | str) -> None:
        await self.conn.send(frame if isinstance(frame, str) else json.dumps(frame))

    async def wait_for(
        self, predicate: Callable[[Event], bool], timeout: float = 15.0, start: int = 0
    ) -> Event:
        """The first frame (from index ``start``) matching ``predicate``."""

        def find() -> Event | None:
            return next((f for f in self.frames[start:] if predicate(f)), None)

        async with asyncio.timeout(timeout):
            async with self._changed:
                while (found := find()) is None:
                    if self.closed.is_set():
                        raise ConnectionError(f"socket closed ({self.close_code}) while waiting")
                    await self._changed.wait()
                return found

    async def wait_type(self, type_: str, timeout: float = 15.0, **fields: Any) -> Event:
        return await self.wait_for(
            lambda f: f.get("type") == type_ and all(f.get(k) == v for k, v in fields.items()),
            timeout,
        )

    def text_of(self, turn_id: str) -> str:
        """The reply text as a client shows it: chunks since the last
        (re)start, replaced by the stored content at ``stream_end``."""
        return reply_text(self.frames, turn_id)

    def streamed_text_of(self, turn_id: str) -> str:
        """Only the chunks since the last (re)start, without ``stream_end``."""
        return reply_text(self.frames, turn_id, use_stream_end=False)

    def event_ids(self) -> list[str]:
        return [f["event_id"] for f in self.frames if "event_id" in f]

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.conn.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
