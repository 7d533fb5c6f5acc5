"""What a turn reads besides its branch: the attachments' passages
(``worker/documents/retrieve.py``) and, for a vision model, the question's
images."""

from __future__ import annotations

import base64

from redis.asyncio import Redis

from shared.conversation import Message
from shared.keys import Keys
from shared.models_file import ModelSpec
from shared.tokens import estimate_tokens
from worker.backends import Backend
from worker.context import SAFETY_MARGIN_TOKENS
from worker.documents.retrieve import DocumentContext, DocumentRetriever


class TurnInputs:
    def __init__(self, keys: Keys, documents: DocumentRetriever, raw: Redis | None) -> None:
        self.keys = keys
        self.documents = documents
        #: A client without response decoding: image bytes for vision models.
        self.raw = raw

    async def documents_for(
        self, owner: str, spec: ModelSpec, backend: Backend, branch: list[Message], cid: str
    ) -> DocumentContext:
        """The passages of this turn's attachments and of the conversation's
        knowledge collections."""

        def count(text: str) -> int:
            counted = backend.count_tokens(text)
            return counted if counted is not None else estimate_tokens(text)

        budget = spec.context_window - spec.max_tokens - SAFETY_MARGIN_TOKENS
        return await self.documents.context(owner, branch, budget, count, cid)

    async def images(self, spec: ModelSpec, question: Message, owner: str) -> list[str]:
        """The question's attached images as data URLs, for a vision model
        (the gateway refuses images for the others). Only the question's:
        earlier images would fill the context turn after turn."""
        wanted = [a for a in question.attachments if a.kind == "image"]
        if not wanted or not spec.vision or self.raw is None:
            return []
        owners = await self.documents.files.many([a.file_id for a in wanted])
        urls: list[str] = []
        for a, record in zip(wanted, owners, strict=True):
            if record is None or record.owner != owner:
                continue
            data = await self.raw.get(self.keys.file_bytes(a.file_id))
            if isinstance(data, bytes):
                urls.append(f"data:{record.mime};base64,{base64.b64encode(data).decode()}")
        return urls
