"""A chat tab that outlives its sockets, and the checks every chaos test makes.

``ResumingClient`` is what the web client does when its socket drops: it
reconnects with the same session (to whichever gateway the test picks), sends
``resume`` with the last ``event_id`` it saw, and carries on. It keeps every
frame of every socket it had, so a test can check afterwards that the events
it got, across all of them, are exactly the session stream's: nothing lost,
nothing twice, nothing out of order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import websockets
from redis.asyncio import Redis

from shared.store import ConversationStore
from shared.streams import parse_stream_id
from tests.support.keys import KEYS
from tests.support.ws import ChatSocket, Event, reply_text

#: What connecting may raise while a gateway or Redis is down.
_CONNECT_ERRORS = (OSError, TimeoutError, ConnectionError, websockets.WebSocketException)


class FrameRefused(Exception):
    """The gateway answered a frame with an ``error`` (the frame was not acted on)."""

    def __init__(self, frame: Event) -> None:
        super().__init__(f"{frame.get('code')}: {frame.get('message')}")
        self.frame = frame


@dataclass(eq=False)
class ResumingClient:
    token: str
    session: str
    #: Returns the ``ws://.../ws`` URL to (re)connect to.
    pick: Callable[[], str]
    sockets: list[ChatSocket] = field(default_factory=list)
    #: The URL each socket was opened to.
    urls: list[str] = field(default_factory=list)
    reconnects: int = 0

    @classmethod
    def new(cls, token: str, pick: Callable[[], str]) -> ResumingClient:
        return cls(token, f"chaos{uuid.uuid4().hex[:16]}", pick)

    @property
    def sock(self) -> ChatSocket:
        return self.sockets[-1]

    @property
    def frames(self) -> list[Event]:
        return [f for s in self.sockets for f in s.frames]

    def last_event_id(self) -> str | None:
        ids = [f["event_id"] for f in self.frames if "event_id" in f]
        return ids[-1] if ids else None

    async def connect(self, url: str | None = None, timeout: float = 90.0) -> None:
        """Open a socket (retrying while nothing answers) and resume where the
        last one stopped."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        delay = 0.1
        while True:
            target = url or self.pick()
            try:
                sock = await ChatSocket.connect(target, self.token, self.session)
            except _CONNECT_ERRORS:
                if loop.time() > deadline:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            try:
                await sock.wait_type("hello", timeout=15)
                if self.sockets:
                    await sock.send({"type": "resume", "after": self.last_event_id() or "0-0"})
            except (*_CONNECT_ERRORS, websockets.ConnectionClosed):
                await sock.close()
                if loop.time() > deadline:
                    raise
                await asyncio.sleep(delay)
                continue
            if self.sockets:
                await self.sock.close()
                self.reconnects += 1
            self.sockets.append(sock)
            self.urls.append(target)
            return

    def cut(self) -> None:
        """Drop the TCP connection without a close handshake, as a network would."""
        self.sock.conn.transport.abort()

    async def send(self, frame: Event) -> None:
        while True:
            if self.sock.closed.is_set():
                await self.connect()
            try:
                await self.sock.send(frame)
                return
            except websockets.ConnectionClosed:
                await self.connect()

    async def wait_for(
        self,
        predicate: Callable[[Event], bool],
        timeout: float = 90.0,
        on_reconnect: Callable[[], Awaitable[None]] | None = None,
    ) -> Event:
        """The first frame, of any socket so far, matching ``predicate``;
        reconnects and resumes whenever the socket drops meanwhile."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            found = next((f for f in self.frames if predicate(f)), None)
            if found is not None:
                return found
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"session {self.session}: no matching frame in {timeout}s")
            try:
                return await self.sock.wait_for(predicate, timeout=remaining)
            except ConnectionError:
                await self.connect()
                if on_reconnect is not None:
                    await on_reconnect()

    async def submit(self, frame: Event, timeout: float = 90.0) -> Event:
        """Send a turn-starting frame until it is acknowledged (its
        ``user_message``), resending it with the same ``client_id`` after a
        reconnect (the gateway acts on it once). An ``error`` about it raises
        ``FrameRefused``."""
        client_id = frame.setdefault("client_id", uuid.uuid4().hex)

        async def resend() -> None:
            await self.send(frame)

        await self.send(frame)
        got = await self.wait_for(
            lambda f: f.get("client_id") == client_id and f["type"] in ("user_message", "error"),
            timeout,
            on_reconnect=resend,
        )
        if got["type"] == "error":
            raise FrameRefused(got)
        return got

    async def submit_expecting_refusal(self, reconnect: bool = True) -> FrameRefused:
        """A message that must be refused (e.g. while Redis is away)."""
        frame = {"type": "message", "content": "anyone there?", "client_id": uuid.uuid4().hex}
        try:
            if not reconnect:
                await self.sock.send(frame)
                got = await self.sock.wait_for(lambda f: f.get("client_id") == frame["client_id"])
                raise FrameRefused(got) if got["type"] == "error" else AssertionError(got)
            ack = await self.submit(frame, timeout=30)
        except FrameRefused as exc:
            return exc
        raise AssertionError(f"accepted: {ack}")

    async def end_of(self, turn_id: str, timeout: float = 120.0) -> Event:
        return await self.wait_for(
            lambda f: f["type"] == "stream_end" and f.get("turn_id") == turn_id, timeout
        )

    def text_of(self, turn_id: str) -> str:
        """What the tab shows for a reply, over all its sockets."""
        return reply_text(self.frames, turn_id)

    def streamed_text_of(self, turn_id: str) -> str:
        return reply_text(self.frames, turn_id, use_stream_end=False)

    async def close(self) -> None:
        for sock in self.sockets:
            await sock.close()


async def check_session_delivery(redis: Redis, client: ResumingClient) -> int:
    """Every event the client got, over all its sockets, is the session
    stream's, in order, each once, with none missing in between; returns how
    many events that was."""
    got = [f for f in client.frames if "event_id" in f]
    if not got:
        return 0
    ids = [f["event_id"] for f in got]
    assert [parse_stream_id(i) for i in ids] == sorted({parse_stream_id(i) for i in ids}), (
        f"{client.session}: events twice or out of order"
    )
    entries = await redis.xrange(KEYS.session(client.session), min=ids[0], max=ids[-1])
    assert [e[0] for e in entries] == ids, f"{client.session}: events lost"
    for frame, (_, fields) in zip(got, entries, strict=True):
        stored = json.loads(fields["d"])
        assert {k: v for k, v in frame.items() if k != "event_id"} == stored
    return len(got)


async def stored_conversation(redis: Redis, cid: str, owner: str) -> Any:
    return await ConversationStore(redis, KEYS).get_owned(cid, owner)


async def check_one_reply_per_turn(
    redis: Redis, client: ResumingClient, owner: str
) -> dict[str, str]:
    """For every turn the client saw acknowledged: the conversation holds the
    user message and exactly one reply, whose stored text is the text the
    client ends with. Returns turn id -> stored text."""
    acked = [f for f in client.frames if f["type"] == "user_message"]
    texts: dict[str, str] = {}
    convs: dict[str, Any] = {}
    for ack in acked:
        cid = ack["conversation_id"]
        if cid not in convs:
            convs[cid] = await stored_conversation(redis, cid, owner)
        conv = convs[cid]
        user_id = ack["message"]["id"]
        turn_id = ack["turn_id"]
        assert user_id in conv.messages, f"acknowledged message {user_id} lost"
        assert conv.messages[user_id].content == ack["message"]["content"]
        replies = [
            m for m in conv.messages.values() if m.parent_id == user_id and m.role == "assistant"
        ]
        assert [r.id for r in replies] == [turn_id], f"turn {turn_id}: replies {replies}"
        stored = replies[0].content
        assert client.text_of(turn_id) == stored, f"turn {turn_id}: client text differs"
        assert stored.startswith(client.streamed_text_of(turn_id))
        texts[turn_id] = stored
    return texts


async def cancel_all(tasks: list[asyncio.Task[Any]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
