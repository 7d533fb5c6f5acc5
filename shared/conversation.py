"""Conversations as the API and the code see them: a tree of messages plus
the branch on screen.

A conversation keeps every version of every message: regenerating a reply or
editing a question adds a sibling, never overwrites. ``current_id`` is the leaf
of the branch the user is looking at; the branch itself is the path from that
leaf up through ``parent_id`` links to a root. That path is walked in Redis,
by the store's scripts (``shared/store/``), from the leaf up: a turn reads as
much of it as its context holds, the API a page at a time.

``children`` is part of every message as the API and the web client see it;
the store keeps each parent's children in the conversation's tree hash,
oldest first.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from shared.tools import ToolStep

Role = Literal["system", "user", "assistant"]
FinishReason = Literal["stop", "length", "stopped", "error"]

#: Ids of conversations, messages, turns and sessions: safe inside a Redis key
#: and inside a JSONPath bracket expression without escaping.
ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
_ID_RE = re.compile(ID_PATTERN)
Id = Annotated[str, StringConstraints(pattern=ID_PATTERN)]


def new_id() -> str:
    """A fresh random id (32 hex characters)."""
    return uuid.uuid4().hex


def is_valid_id(value: str) -> bool:
    return bool(_ID_RE.fullmatch(value))  # match's `$` would pass a final newline


def now() -> float:
    """Timestamps are Unix seconds as floats, in every document and event."""
    return time.time()


class Usage(BaseModel):
    """Tokens spent on one reply. ``estimated`` is true when the backend did
    not report usage and tidechat counted (or estimated) the tokens itself."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    estimated: bool = False


class ErrorInfo(BaseModel):
    code: str
    message: str


class Attachment(BaseModel):
    """A file attached to a user message (docs/documents.md): what the
    message shows; the file itself lives under ``file(file_id)``."""

    file_id: Id
    name: str
    kind: str
    mime: str
    size: int
    #: Set by an import when the file is not in this deployment (or not the
    #: importer's): the message keeps its name, the client shows it missing.
    missing: bool = False


class Citation(BaseModel):
    """A passage a reply was given, numbered as the prompt numbered it ([n])."""

    n: int
    file_id: str
    name: str
    #: 1-based page of a PDF; 0 for formats without pages.
    page: int = 0
    text: str


class Message(BaseModel):
    """One node of the message tree."""

    # Timestamps are finite: JSON (and RedisJSON) has no NaN or Infinity.
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    id: Id
    parent_id: Id | None = None
    children: list[str] = Field(default_factory=list)
    role: Role
    content: str
    model: str | None = None
    finish_reason: FinishReason | None = None
    usage: Usage | None = None
    created_at: float = Field(default_factory=now)
    #: Set on assistant messages whose generation failed (finish_reason "error").
    error: ErrorInfo | None = None
    #: Set when the prompt had to be cut to fit the context window.
    notice: str | None = None
    #: Set when the moderation hook blocked this message: the reason an admin
    #: wrote. A blocked user message is kept but never answered (nor sent to
    #: a model again); a blocked reply's text is withheld (empty content).
    blocked: str | None = None
    #: User messages: the files attached (documents, images).
    attachments: list[Attachment] = Field(default_factory=list)
    #: Assistant messages: the passages the reply was given, by number.
    citations: list[Citation] = Field(default_factory=list)
    #: Tools (issue 15, shared/tools.py): on an assistant message whose
    #: model called tools, each model call that asked for tools, with the
    #: calls and their results, in order; ``content`` is the final answer.
    steps: list[ToolStep] | None = None

    def stored(self) -> dict[str, Any]:
        """The form kept in Redis: everything but the derived ``children``
        (and the document fields when empty, so plain messages keep the
        layout they always had)."""
        out = self.model_dump(mode="json", exclude={"children"})
        for name in ("attachments", "citations"):
            if not out[name]:
                del out[name]
        for attachment in out.get("attachments", []):
            if not attachment["missing"]:
                del attachment["missing"]  # the layout an attachment always had
        return out


class ConversationSummary(BaseModel):
    """What the conversation list shows."""

    id: Id
    title: str
    model: str | None = None
    created_at: float
    updated_at: float


class ConversationView(ConversationSummary):
    """A whole conversation: every message of every branch (a JSON export,
    an import, a new conversation's ``conversation_created``)."""

    system_prompt: str = ""
    current_id: str | None = None
    messages: dict[str, Message] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _derive_children(self) -> ConversationView:
        for message in self.messages.values():
            message.children = []
        # Siblings oldest first, as the store keeps them.
        for message in sorted(self.messages.values(), key=lambda m: m.created_at):
            parent = self.messages.get(message.parent_id) if message.parent_id else None
            if parent is not None:
                parent.children.append(message.id)
        return self

    def summary(self) -> ConversationSummary:
        fields = set(ConversationSummary.model_fields)
        return ConversationSummary.model_validate(self.model_dump(include=fields))


class Conversation(ConversationView):
    """The stored document: the view plus its owner."""

    owner: str

    def view(self) -> ConversationView:
        return ConversationView.model_validate(self.model_dump(exclude={"owner"}))

    def stored(self) -> dict[str, Any]:
        data = self.model_dump(mode="json", exclude={"messages"})
        data["messages"] = {mid: m.stored() for mid, m in self.messages.items()}
        return data


class BranchPage(ConversationSummary):
    """A page of one branch (``GET /api/conversations/{id}``): a run of
    consecutive messages on it, each with its ``children``, and what the
    branch navigator needs above them."""

    system_prompt: str = ""
    current_id: str | None = None
    #: Messages in the whole conversation (every branch).
    message_count: int = 0
    #: This page's messages, by id.
    messages: dict[str, Message] = Field(default_factory=dict)
    #: Their ids along the branch, oldest first.
    branch: list[str] = Field(default_factory=list)
    #: The siblings of the page's first message, itself included, oldest
    #: first: its parent's children, or the roots (its parent may not be
    #: loaded yet).
    head_siblings: list[str] = Field(default_factory=list)
    #: The parent of the page's first message, when there is one: pass it as
    #: ``leaf`` for the page above.
    older: str | None = None
    #: A page down a branch that stopped before the leaf: its last message,
    #: to pass as ``after`` for the next page down.
    newer: str | None = None


class BranchSwitch(BaseModel):
    """The answer to a branch switch (``POST /api/conversations/{id}/branch``):
    the new current leaf, the branch from the chosen message down, and, when
    that page did not reach the leaf, the page that ends at it."""

    current_id: str
    down: BranchPage
    tail: BranchPage | None = None


class Highlight(BaseModel):
    """A matched word in a search snippet: ``text[start:end]``."""

    start: int
    end: int


class Snippet(BaseModel):
    """Where a search matched a conversation's messages: a short stretch of
    one message's text, with the matched words marked (as offsets, so the
    client marks them without ever reading markup from text)."""

    message_id: str
    text: str
    highlights: list[Highlight] = Field(default_factory=list)


class SearchHit(ConversationSummary):
    """A conversation found by a search, best first."""

    snippet: Snippet | None = None
