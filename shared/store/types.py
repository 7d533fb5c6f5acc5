"""What the conversation store's callers handle: its errors, the records
its reads return, and the small rules about titles and list order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.conversation import Message

#: A conversation title longer than this is cut (titles are one line).
TITLE_MAX_CHARS = 120


class NotFoundError(Exception):
    """The conversation (or message) does not exist or belongs to someone else."""


class MessageNotFoundError(NotFoundError):
    """The conversation exists (and is the caller's), the message does not."""


#: A conflict's error text starts with this word, then the conversation's
#: current leaf now.
CONFLICT = "CONFLICT"


class ConflictError(Exception):
    """The conversation moved on: its newest message is not the one expected."""

    def __init__(self, current_id: str | None) -> None:
        super().__init__(f"{CONFLICT} {current_id or ''}")
        self.current_id = current_id

    @classmethod
    def from_reply(cls, error: Exception) -> ConflictError | None:
        """The conflict an error reports (itself, or a ``CONFLICT <id>`` reply), else None."""
        if isinstance(error, ConflictError):
            return error
        text = str(error).removeprefix("ERR ")
        if not text.startswith(CONFLICT):
            return None
        return cls(text[len(CONFLICT) :].strip() or None)


@dataclass(slots=True)
class ConversationHead:
    """The few fields the gateway needs to accept a turn, read in one round trip."""

    id: str
    owner: str
    current_id: str | None
    model: str | None
    title: str
    #: role and parent of the message the frame names, when it names one
    message_role: str | None = None
    message_parent_id: str | None = None
    message_exists: bool = False


@dataclass(slots=True)
class AddResult:
    """What adding a message did (``lua.ADD``'s reply)."""

    #: 1 stored, 0 a resent frame (nothing written), -1 no such
    #: conversation of the writer's, -2 no such parent.
    status: int
    #: The message was not stored before (a reply stored again is not).
    new: bool
    #: It is the conversation's first reply.
    first_reply: bool
    #: Status -3 (a conflict): the conversation's current leaf now.
    current_id: str | None = None

    @classmethod
    def parse(cls, reply: Any) -> AddResult:
        status, new, first = (int(v) for v in reply[:3])
        current = str(reply[3]) if len(reply) > 3 and reply[3] else None
        return cls(status, bool(new), bool(first), current)


@dataclass(slots=True)
class TurnContext:
    """What a worker reads for a turn (``lua.CONTEXT``)."""

    owner: str
    system_prompt: str
    #: The conversation had a reply before this turn's.
    replied: bool
    #: This turn's reply, when an earlier delivery stored it already.
    stored_reply: Message | None
    #: The branch up to the question, root first: as much as the budget
    #: asked for (``complete``: all of it, up to the root).
    branch: list[Message]
    complete: bool


def title_from_text(text: str, words: int = 8) -> str:
    """The fallback title: the first words of the first question."""
    first = " ".join(text.split()[:words]).strip()
    if not first:
        return "New chat"
    return first[:TITLE_MAX_CHARS]


def score(ts_: float) -> int:
    """A conversation's place in its owner's list: last update, in ms."""
    return int(ts_ * 1000)
