"""What a chat frame may ask for, checked before anything is written: the
text's size, the model, the conversation and message it names (the user's
own), and its attachments (the user's own files; images only to a model
that can see them). Each refusal is an ``ApiError`` the client is shown."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.attachments import edited_attachments, resolve_attachments
from gateway.errors import ApiError
from shared.conversation import Attachment
from shared.files import FileStore
from shared.models_file import ModelCatalog, ModelSpec, UnknownModelError
from shared.protocol import UserInfo
from shared.store import ConversationHead, ConversationStore, NotFoundError


@dataclass(frozen=True, slots=True)
class TurnChecks:
    catalog: ModelCatalog
    store: ConversationStore
    files: FileStore
    max_message_chars: int
    max_attachments: int

    def content(self, content: str) -> None:
        if not content.strip():
            raise ApiError("bad_request", "the message is empty")
        if len(content) > self.max_message_chars:
            raise ApiError(
                "too_large",
                f"the message has {len(content):,} characters; the limit is "
                f"{self.max_message_chars:,}",
            )

    def model(self, model_id: str | None, fallback: str | None = None) -> ModelSpec:
        """The model a frame asks for, else the conversation's, else the
        default (also when the conversation's model was retired)."""
        if model_id is None:
            return self.catalog.get(fallback) or self.catalog.default
        try:
            return self.catalog.require(model_id)
        except UnknownModelError as exc:
            raise ApiError("bad_request", exc.message) from exc

    async def head(self, user: UserInfo, cid: str, message_id: str | None) -> ConversationHead:
        """The user's own conversation, and the message named in it."""
        try:
            head = await self.store.owned_head(cid, user.id, message_id)
        except NotFoundError as exc:
            raise ApiError("not_found", "conversation not found") from exc
        if message_id is not None and not head.message_exists:
            raise ApiError("not_found", "message not found in this conversation")
        return head

    async def attachments(self, user: UserInfo, ids: list[str]) -> list[Attachment]:
        return await resolve_attachments(self.files, user.id, ids, self.max_attachments)

    async def edited_attachments(
        self, user: UserInfo, cid: str, original_id: str, ids: list[str] | None
    ) -> list[Attachment]:
        """An edited question's files: the frame's, else the original's."""
        return await edited_attachments(
            self.files, self.store, user.id, cid, original_id, ids, self.max_attachments
        )

    @staticmethod
    def images(spec: ModelSpec, attachments: list[Attachment]) -> None:
        """A model without ``vision`` is never sent an image: refused here, and
        the composer says so before sending."""
        if not spec.vision and any(a.kind == "image" for a in attachments):
            raise ApiError(
                "bad_request", f"{spec.display_name} cannot see images; choose a model that can"
            )
