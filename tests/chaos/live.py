"""A live stack to fuzz: a signed-in user with an open socket, one real
conversation of theirs and one of someone else's (fixtures in conftest)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from hypothesis import HealthCheck, settings
from websockets.sync.client import ClientConnection, connect

from tests.support.stack import Stack

#: Hypothesis settings for fuzzing a live stack: a modest number of examples,
#: no deadline (a round trip through processes varies), no example database
#: written into the checkout.
FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,  # no example database written into the checkout
    suppress_health_check=list(HealthCheck),
)


@dataclass
class Target:
    stack: Stack
    token: str
    ws: ClientConnection
    http: httpx.Client
    #: A real conversation: its id, a user message, a reply.
    cid: str
    user_message_id: str
    reply_id: str
    #: Someone else's conversation.
    foreign_cid: str

    def recv_until(self, type_: str, timeout: float = 15) -> list[dict[str, Any]]:
        frames = []
        while True:
            frame = json.loads(self.ws.recv(timeout=timeout))
            frames.append(frame)
            if frame.get("type") == type_:
                return frames

    def drain(self) -> None:
        """Drop what is left of earlier frames (a failed example's pong...)."""
        while True:
            try:
                self.ws.recv(timeout=0)
            except TimeoutError:
                return

    def still_served(self) -> None:
        """A turn on this socket completes: the gateway's reader is alive."""
        client_id = uuid.uuid4().hex
        message = {"type": "message", "content": "still there?", "conversation_id": self.cid}
        self.ws.send(json.dumps({**message, "client_id": client_id}))
        turn_id = None
        while True:
            frame = json.loads(self.ws.recv(timeout=10))
            if frame["type"] == "user_message" and frame.get("client_id") == client_id:
                turn_id = frame["turn_id"]
            if frame["type"] == "stream_end" and turn_id and frame["turn_id"] == turn_id:
                return

    def snapshot(self) -> tuple[int, int]:
        """What the gateway writes for an accepted frame: the user's
        conversations, and the user messages of the real one."""
        convs = self.http.get("/api/conversations", params={"limit": 100}).json()["items"]
        conv = self.http.get(f"/api/conversations/{self.cid}").json()
        users = sum(1 for m in conv["messages"].values() if m["role"] == "user")
        return len(convs), users


def first_reply(stack: Stack, token: str) -> dict[str, Any]:
    with connect(stack.ws_url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        ws.send(json.dumps({"type": "message", "content": "a real question"}))
        while True:
            frame = json.loads(ws.recv(timeout=15))
            if frame["type"] == "stream_end":
                return dict(frame)


@contextmanager
def open_target(stack: Stack) -> Iterator[Target]:
    token = stack.signup(f"fuzzer{uuid.uuid4().hex[:8]}")
    end = first_reply(stack, token)
    foreign = first_reply(stack, stack.signup(f"bystander{uuid.uuid4().hex[:8]}"))
    headers = {"Authorization": f"Bearer {token}"}
    # No keepalive pings of ours: the sync client's ping thread draws its
    # payload from the `random` module, and one landing while Hypothesis
    # generates a case fails the fuzz tests with a HypothesisDeprecationWarning
    # ("Do not use the `random` module inside strategies"). The server pings.
    with (
        # No keepalive pings of the client's (the server pings): websockets
        # draws their payload from the global `random` on its own thread, and
        # Hypothesis fails a draw during which the global random state moved.
        connect(stack.ws_url, additional_headers=headers, max_size=2**24, ping_interval=None) as ws,
        stack.client(token) as http,
    ):
        target = Target(
            stack,
            token,
            ws,
            http,
            cid=end["conversation_id"],
            user_message_id=end["message"]["parent_id"],
            reply_id=end["turn_id"],
            foreign_cid=foreign["conversation_id"],
        )
        target.recv_until("hello")
        ws.send(json.dumps({"type": "ping"}))
        target.recv_until("pong")
        yield target
