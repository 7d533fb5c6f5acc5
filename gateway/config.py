"""Gateway settings, from the environment (``TIDECHAT_*``) and ``.env``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from gateway.security.client_address import parse_networks
from gateway.security.origin import normalize_origin
from shared.keys import LOGIN_FREE_FAILURES_ACCOUNT, LOGIN_FREE_FAILURES_ADDRESS
from shared.settings import CommonSettings
from shared.user_limits import TurnLimits

#: ``a, b,c`` in the environment; a list in code.
CommaList = Annotated[list[str], NoDecode]


def _split(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class GatewaySettings(CommonSettings):
    #: Anyone may create an account; when false only the first (admin)
    #: account can be created through sign-up.
    signup_open: bool = True
    #: Search finds message text as well as titles. False leaves message
    #: text out of the query engine's index (titles only): the index of
    #: every message costs some 50-70% more memory (docs/benchmarks.md).
    #: Changing it rebuilds the index at the gateway's next start.
    search_messages: bool = True
    #: Longest user message, in characters; longer ones get ``too_large``.
    max_message_chars: int = Field(default=32_000, ge=1)
    #: Messages (and regenerations, edits) one user may send in any sliding
    #: minute, counted across all gateways; 0 turns the limit off.
    rate_limit_per_minute: int = Field(default=30, ge=0)
    #: Replies one user may have queued or being written at once, across all
    #: gateways (more tabs do not multiply it); 0: no limit.
    max_concurrent_turns: int = Field(default=4, ge=0)
    #: Tokens (prompt + completion, as workers report them) one user may use
    #: per UTC day; the turn that crosses it completes, the next is refused
    #: until midnight UTC. 0: no budget. 2M is some 250 turns with a full 8k
    #: context: ample for a person, a stop for a runaway script.
    daily_token_budget: int = Field(default=2_000_000, ge=0)
    #: Failed sign-ins an account (the name typed) may have before each
    #: further attempt waits (1 s, 2 s, 4 s... up to 15 min).
    signin_attempts_per_account: int = Field(default=LOGIN_FREE_FAILURES_ACCOUNT, ge=1)
    #: The same per client address: higher, since many people may share one
    #: (an office behind NAT). Successful sign-ins do not count.
    signin_attempts_per_address: int = Field(default=LOGIN_FREE_FAILURES_ADDRESS, ge=1)
    #: Origins besides the gateway's own whose pages may use the session
    #: cookie (WebSocket, writes), e.g. ``https://chat.example.com``.
    allowed_origins: CommaList = Field(default_factory=list)
    #: Reverse proxies (addresses or CIDRs) whose ``X-Forwarded-For`` names
    #: the client, for per-address sign-in throttling. Empty: the TCP peer
    #: is the client. Only list proxies that every request passes through.
    trusted_proxies: CommaList = Field(default_factory=list)
    #: Largest request body (and WebSocket frame), in bytes, on every route
    #: but import; refused with 413 (frames: closed with 1009) before it is
    #: read whole.
    max_request_bytes: int = Field(default=1024 * 1024, ge=16 * 1024)
    #: Turns waiting in one pool (on its stream or in users' lines) beyond
    #: which new ones are refused with ``busy`` rather than queued without bound.
    max_queued_turns: int = Field(default=1_000, ge=1)
    #: Turns one user may have waiting in their own line of a pool (beyond
    #: their ``fair_turns_per_user`` on the stream) before new ones get
    #: ``busy``: a few accounts cannot fill the pool's queue for everyone.
    max_waiting_turns_per_user: int = Field(default=20, ge=1)
    #: Storage quotas per user (0: no limit): conversations, messages, and
    #: bytes of message text. Past one, writes get ``quota_exceeded``.
    quota_conversations: int = Field(default=2_000, ge=0)
    quota_messages: int = Field(default=50_000, ge=0)
    quota_bytes: int = Field(default=50_000_000, ge=0)
    #: Stop frames one user may send per minute (all gateways together); a
    #: stop is announced to every worker, so a flood would cost them all.
    #: 0 turns the limit off.
    stops_per_minute: int = Field(default=60, ge=0)
    #: A session stream lives this long after its last use.
    session_ttl_seconds: int = Field(default=900, ge=60)
    #: Bytes of events waiting to be sent to one socket (or SSE stream):
    #: past this the gateway stops reading that session's events until the
    #: client catches up (they wait in Redis). Frames that are not events
    #: (pong, errors) left unread past twice this close the socket with 1013.
    socket_buffer_bytes: int = Field(default=1_048_576, ge=16_384)
    #: A socket whose client has read nothing for this long (a write that
    #: does not complete) is closed and dropped; the client resumes.
    socket_write_timeout_seconds: float = Field(default=30.0, gt=0)
    #: Redis connections this process may open for commands (plus one for
    #: the multiplexed reader), however many sockets it serves.
    redis_pool_size: int = Field(default=16, ge=2)
    #: Imports (``POST /api/conversations/import``): largest file, most
    #: messages, deepest branch. Checked in a thread, in linear time.
    import_max_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    import_max_messages: int = Field(default=10_000, ge=1)
    import_max_depth: int = Field(default=5_000, ge=1)
    #: Files (``POST /api/files``, docs/documents.md): the largest one, what
    #: one user may keep in all (bytes, files; 0: no limit), and files per
    #: message. A refused upload answers 413 before it is read whole.
    max_file_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    max_user_file_bytes: int = Field(default=500 * 1024 * 1024, ge=0)
    max_files_per_user: int = Field(default=1_000, ge=0)
    max_attachments_per_message: int = Field(default=10, ge=0)
    #: Set the Secure flag on the session cookie (serve over HTTPS).
    cookie_secure: bool = False
    #: Built web client to serve at ``/``; default: ``web/dist`` of the checkout.
    web_dir: Path | None = None
    #: Bearer token for ``/metrics`` and ``/ready``'s details (workers, queue
    #: depths, sockets). Unset: ``/metrics`` is open (keep it off the public
    #: network) and ``/ready`` only says ready or not, and why.
    metrics_token: SecretStr | None = None

    @field_validator("metrics_token", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # compose passes ``${TIDECHAT_METRICS_TOKEN:-}``: empty means unset.
        return None if value == "" else value

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _origins(cls, value: Any) -> Any:
        value = _split(value)
        for origin in value:
            if normalize_origin(origin) is None:
                raise ValueError(f"{origin!r} is not an origin (scheme://host[:port])")
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxies(cls, value: Any) -> Any:
        value = _split(value)
        parse_networks(value)  # raises ValueError on a bad one
        return value

    @property
    def turn_limits(self) -> TurnLimits:
        return TurnLimits(
            per_minute=self.rate_limit_per_minute,
            max_concurrent=self.max_concurrent_turns,
            daily_token_budget=self.daily_token_budget,
        )
