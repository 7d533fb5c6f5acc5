"""What can go wrong while generating a turn, as a small hierarchy.

Backends raise these, mapped from their library's exceptions with
``raise ... from exc`` at the boundary; the turn runner decides by
``retryable`` whether to try again (with jittered backoff) or give up, and
sends ``code`` to the client in an ``error`` event.
"""

from __future__ import annotations

from shared.protocol import ErrorCode


class TurnError(Exception):
    """Base of every failure the worker reports to a user."""

    code: ErrorCode = "internal"
    retryable: bool = False

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class BackendError(TurnError):
    """The backend refused the request (a 4xx other than 429): not retried."""

    code: ErrorCode = "backend_error"


class BackendRateLimited(TurnError):
    """429 from upstream: retried with backoff, then ``rate_limited``."""

    code: ErrorCode = "rate_limited"
    retryable = True


class BackendUnavailable(TurnError):
    """503/5xx, refused or cut connection: retried, then ``backend_unavailable``."""

    code: ErrorCode = "backend_unavailable"
    retryable = True


class BackendTimeout(TurnError):
    """Upstream too slow or silent too long: retried, then ``timeout``."""

    code: ErrorCode = "timeout"
    retryable = True


class ConversationGone(TurnError):
    """The conversation was deleted before the turn ran."""

    code: ErrorCode = "not_found"


class UnknownModel(TurnError):
    """The turn names a model the models file no longer offers."""

    code: ErrorCode = "bad_request"


class PoisonTurn(TurnError):
    """A turn whose workers kept dying on it: dead-lettered past the limit."""

    code: ErrorCode = "internal"


class Blocked(TurnError):
    """The message to answer was blocked by the moderation hook (a
    regeneration asked of it): it is never sent to a model."""

    code: ErrorCode = "blocked"
