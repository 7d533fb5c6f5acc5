"""The audit log: every admin action and every security event, as entries on
one Redis stream (``keys.audit()``), written by this module only.

An entry says what happened (``kind``), who did it (``actor``: an admin,
a user, or nobody for the system and anonymous callers), to whom
(``target``), from which address, and a few details. Never a password,
token, session id or a user's text: the log is for people who run the
server, and it is exported as JSON lines.

Security events are logged sparingly so an attack cannot flood the log: a
lockout when a sign-in throttle first locks and then each time its lock
doubles, a quota hit once per user, kind and day.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal, cast

from pydantic import BaseModel, Field

from shared.keys import AUDIT_MAXLEN, Keys
from shared.streams import CappedLog, older_than

AuditKind = Literal[
    # admin actions
    "user.created",
    "user.invited",
    "user.disabled",
    "user.enabled",
    "user.deleted",
    "user.purged",
    "user.password_reset",
    "user.admin_granted",
    "user.admin_revoked",
    "user.quota_changed",
    "invite.revoked",
    "invite.used",
    "signup.mode_changed",
    "group.created",
    "group.changed",
    "group.deleted",
    "group.member_added",
    "group.member_removed",
    "model.access_changed",
    "retention.run_requested",
    "retention.swept",
    "job.failed",
    # security events
    "signin.failures",
    "signin.lockout",
    "signin.disabled_account",
    "quota.hit",
    "moderation.blocked",
]

#: Kinds that are security events rather than admin actions.
SECURITY_KINDS = frozenset(
    {
        "signin.failures",
        "signin.lockout",
        "signin.disabled_account",
        "quota.hit",
        "moderation.blocked",
        "job.failed",
    }
)

#: Entries looked at per read of the console before it returns what it has
#: (with a cursor to go on): a filter that matches rarely costs a bounded scan.
MAX_SCAN = 5_000
_BATCH = 500

Detail = dict[str, str | int | float | bool | list[str] | None]


class Party(BaseModel):
    """Who did something, or to whom: a user's id and name at the time."""

    id: str
    name: str = ""


class AuditEntry(BaseModel):
    id: str = ""
    ts: float = Field(default_factory=time.time)
    kind: AuditKind
    actor: Party | None = None
    target: Party | None = None
    address: str | None = None
    detail: Detail = Field(default_factory=dict)

    @property
    def category(self) -> Literal["security", "admin"]:
        return "security" if self.kind in SECURITY_KINDS else "admin"

    def involves(self, who: str) -> bool:
        wanted = who.casefold()
        return any(
            p is not None and (p.id == who or p.name.casefold() == wanted)
            for p in (self.actor, self.target)
        )


class AuditFilter(BaseModel):
    """What the console and ``tidechat audit`` narrow the log by."""

    #: Kinds, or prefixes ending in ``.`` (``signin.``); empty: all.
    kinds: list[str] = Field(default_factory=list)
    category: Literal["security", "admin"] | None = None
    #: A user id or name: entries where they acted or were acted on.
    user: str | None = None
    #: Unix seconds, inclusive.
    since: float | None = None
    until: float | None = None

    def matches(self, entry: AuditEntry) -> bool:
        if self.kinds and not any(
            entry.kind == k or (k.endswith(".") and entry.kind.startswith(k)) for k in self.kinds
        ):
            return False
        if self.category is not None and entry.category != self.category:
            return False
        return self.user is None or entry.involves(self.user)


@dataclass(eq=False)
class AuditLog(CappedLog):
    """The audit stream: the only writer of ``keys.audit()``."""

    maxlen: int = AUDIT_MAXLEN
    name = Keys.audit

    def queue(self, pipe: Any, entry: AuditEntry) -> Any:
        """Add ``entry`` on ``pipe`` (a pipeline of the action it records; or
        the client: then await the result)."""
        return self.queue_json(pipe, entry.model_dump_json(exclude={"id"}, exclude_none=True))

    async def record(
        self,
        kind: AuditKind,
        *,
        actor: Party | None = None,
        target: Party | None = None,
        address: str | None = None,
        **detail: Any,
    ) -> None:
        entry = AuditEntry(kind=kind, actor=actor, target=target, address=address, detail=detail)
        await self.queue(self.redis, entry)

    async def read(
        self, filt: AuditFilter | None = None, *, before: str | None = None, limit: int = 100
    ) -> tuple[list[AuditEntry], str | None]:
        """Newest first, matching ``filt``; the cursor (an entry id) goes on
        from where this read stopped (None: the log has no more)."""
        filt = filt or AuditFilter()
        if before:
            older = older_than(before)
            if older is None:
                return [], None
            top = older
        else:
            top = "+" if filt.until is None else _ms(filt.until, 999)
        bottom = "-" if filt.since is None else _ms(filt.since, 0)
        found: list[AuditEntry] = []
        scanned = 0
        while len(found) < limit and scanned < MAX_SCAN:
            rows = cast(
                list[tuple[str, dict[str, str]]],
                await self.redis.xrevrange(self.keys.audit(), top, bottom, count=_BATCH),
            )
            if not rows:
                return found, None
            for entry_id, fields in rows:
                scanned += 1
                top = f"({entry_id}"
                entry = _decode(entry_id, fields)
                if entry is not None and filt.matches(entry):
                    found.append(entry)
                    if len(found) == limit:
                        return found, entry_id
            if len(rows) < _BATCH:
                return found, None
        return found, top.removeprefix("(")

    async def entries(self, filt: AuditFilter | None = None) -> Iterable[AuditEntry]:
        """Every matching entry, newest first (an export): read in pages."""
        out: list[AuditEntry] = []
        cursor: str | None = None
        while True:
            page, cursor = await self.read(filt, before=cursor, limit=1_000)
            out.extend(page)
            if cursor is None:
                return out


def _ms(ts: float, seq: int) -> str:
    return f"{int(ts * 1000)}-{seq if seq == 0 else 2**63 - 1}"


def _decode(entry_id: str, fields: dict[str, str]) -> AuditEntry | None:
    try:
        entry = AuditEntry.model_validate_json(fields["d"])
    except (KeyError, ValueError):
        return None  # an entry of a newer release: skipped, not fatal
    entry.id = entry_id
    return entry
