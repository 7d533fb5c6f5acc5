"""The "direct" baseline for the pipeline benchmark.

This is how Open WebUI-style apps serve a turn: the process holding the
socket calls the model itself and writes every token straight to that
socket; history goes to the same database. Here it is built from tidechat's
own parts (the same auth, store, prompt builder, coalescer and scripted
backend), so the only difference from tidechat is the Redis hop: no prompt
stream, no worker process, no session stream.

Benchmark use only: it lives in bench/ because it joins gateway and worker
code, which the product never does.

    python -m bench.direct_server --port 8100   (reads REDIS_URL, TIDECHAT_MODELS)
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, WebSocket, WebSocketDisconnect

from gateway.admin import build_parts
from gateway.auth import COOKIE_NAME, AuthService, Session, SignupRequest, token_from
from gateway.config import GatewaySettings
from gateway.frames import FrameError, error_frame, parse_frame
from gateway.security.throttle import SignInThrottle
from shared.conversation import Conversation, Message, Usage, new_id, now
from shared.keys import CONTEXT_OVERFETCH
from shared.protocol import (
    ConversationCreatedEvent,
    HelloEvent,
    MessageFrame,
    StreamChunkEvent,
    StreamEndEvent,
    StreamStartEvent,
    UserMessageEvent,
)
from shared.redis_client import make_redis
from shared.store import ConversationStore, title_from_text
from shared.tokens import estimate_tokens
from worker.backends import BackendPool, GenerationRequest
from worker.context import build_prompt
from worker.generate import RetryPolicy, generate


def create_direct_app(settings: GatewaySettings) -> FastAPI:
    catalog = settings.load_models()
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        redis = make_redis(settings.redis_url, max_connections=settings.redis_pool_size)
        state["redis"] = redis
        state["store"] = ConversationStore(redis, settings.keys)
        parts = build_parts(redis, settings.keys, settings)
        state["auth"] = AuthService(
            redis, settings.keys, parts, SignInThrottle(redis, settings.keys)
        )
        state["backends"] = BackendPool(hf_token=None, data_dir=Path("."))
        yield
        await redis.aclose()

    app = FastAPI(lifespan=lifespan)

    @app.post("/api/auth/signup", status_code=201)
    async def signup(creds: SignupRequest) -> Session:
        session: Session = await state["auth"].signup(creds, address="bench")
        return session

    @app.websocket("/ws")
    async def ws(socket: WebSocket) -> None:
        token = token_from(socket.headers.get("authorization"), socket.cookies.get(COOKIE_NAME))
        user = await state["auth"].user_for_token(token)
        await socket.accept()
        if user is None:
            await socket.close(4401)
            return
        await socket.send_text(HelloEvent(session=new_id(), user=user).model_dump_json())
        try:
            while True:
                text = await socket.receive_text()
                try:
                    frame = parse_frame(text)
                except FrameError as exc:
                    await socket.send_text(error_frame("bad_request", exc.message))
                    continue
                if isinstance(frame, MessageFrame):
                    await turn(socket, user.id, frame)
        except WebSocketDisconnect:
            return

    async def turn(socket: WebSocket, uid: str, frame: MessageFrame) -> None:
        redis = state["redis"]
        store: ConversationStore = state["store"]
        spec = catalog.get(frame.model)
        assert spec is not None
        pipe = redis.pipeline(transaction=False)
        message = Message(id=new_id(), role="user", content=frame.content)
        if frame.conversation_id is None:
            conv = Conversation(
                id=new_id(),
                owner=uid,
                title=title_from_text(frame.content),
                model=spec.id,
                created_at=now(),
                updated_at=now(),
            )
            await socket.send_text(
                ConversationCreatedEvent(conversation=conv.view()).model_dump_json()
            )
            cid = conv.id
            store.queue_add_message(pipe, cid, message, owner=uid, bump=True, create=conv)
        else:
            cid = frame.conversation_id
            head = await store.owned_head(cid, uid)
            message.parent_id = head.current_id
            store.queue_add_message(pipe, cid, message, owner=uid, bump=True)
        await pipe.execute()
        await socket.send_text(
            UserMessageEvent(
                conversation_id=cid, message=message, client_id=frame.client_id
            ).model_dump_json()
        )
        # Load the branch and build the prompt exactly as a worker does.
        turn_id = new_id()
        context = await store.context(
            cid, message.id, turn_id, budget=int(spec.context_window * CONTEXT_OVERFETCH)
        )
        assert context is not None
        backend = state["backends"].get(spec)
        prompt = build_prompt(
            spec,
            context.system_prompt,
            context.branch,
            backend.count_tokens,
            complete=context.complete,
        )
        await socket.send_text(
            StreamStartEvent(
                turn_id=turn_id,
                conversation_id=cid,
                message_id=turn_id,
                parent_id=message.id,
                model=spec.id,
            ).model_dump_json()
        )

        async def send_chunk(text: str) -> None:
            await socket.send_text(StreamChunkEvent(turn_id=turn_id, chunk=text).model_dump_json())

        async def send_restart(reason: str) -> None:
            return None

        outcome = await generate(
            backend,
            GenerationRequest(messages=prompt.messages, max_tokens=spec.max_tokens),
            send_chunk=send_chunk,
            send_restart=send_restart,
            stop=asyncio.Event(),
            policy=RetryPolicy(),
            idle_timeout=60,
            total_timeout=600,
        )
        reply = Message(
            id=turn_id,
            parent_id=message.id,
            role="assistant",
            content=outcome.text,
            model=spec.id,
            finish_reason=outcome.finish_reason,
            usage=outcome.usage,
        )
        if reply.usage is None:
            reply.usage = Usage(
                prompt_tokens=prompt.tokens, completion_tokens=estimate_tokens(outcome.text)
            )
        pipe = redis.pipeline(transaction=False)
        store.queue_add_message(pipe, cid, reply, owner=uid)
        await pipe.execute()
        await socket.send_text(
            StreamEndEvent(turn_id=turn_id, conversation_id=cid, message=reply).model_dump_json()
        )

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    args = parser.parse_args()
    app = create_direct_app(GatewaySettings())
    # The same WebSocket settings as tidechat's gateway (no permessage-deflate).
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        ws_per_message_deflate=False,
    )


if __name__ == "__main__":
    main()
