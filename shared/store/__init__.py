"""The conversation store: conversations, their message trees and the
operations on them, in Redis (``conversations.py`` writes, ``reads.py``
and ``paging.py`` read, ``types.py`` what they return; the scripts in
``lua.py``, the layout in ``codec.py``, whole conversations in ``bulk.py``)."""

from shared.store.conversations import ConversationStore
from shared.store.types import (
    CONFLICT,
    TITLE_MAX_CHARS,
    AddResult,
    ConflictError,
    ConversationHead,
    MessageNotFoundError,
    NotFoundError,
    TurnContext,
    score,
    title_from_text,
)

__all__ = [
    "CONFLICT",
    "TITLE_MAX_CHARS",
    "AddResult",
    "ConflictError",
    "ConversationHead",
    "ConversationStore",
    "MessageNotFoundError",
    "NotFoundError",
    "TurnContext",
    "score",
    "title_from_text",
]
