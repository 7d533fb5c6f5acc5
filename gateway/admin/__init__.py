"""Administration (issue 13): accounts, invites, run-time settings, groups and
model access, quotas, usage, the audit log. Built in the gateway's lifespan
(``build``) and served under ``/api/admin/...`` (``gateway/routes/admin*.py``),
admin only."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from gateway.admin.accounts import Accounts
from gateway.admin.invites import Invites
from gateway.admin.quotas import UserQuotas
from gateway.admin.runtime import RuntimeSettings
from gateway.admin.usage import UsageReader
from gateway.config import GatewaySettings
from gateway.security.signins import SignIns
from shared.access import ModelAccess
from shared.audit import AuditLog
from shared.groups import GroupStore
from shared.keys import Keys
from shared.moderation_log import FlagLog


@dataclass(eq=False)
class AdminParts:
    """The pieces the auth service and the admin routes share."""

    accounts: Accounts
    invites: Invites
    runtime: RuntimeSettings
    groups: GroupStore
    quotas: UserQuotas
    usage: UsageReader
    access: ModelAccess
    audit: AuditLog
    flags: FlagLog
    signins: SignIns


def build_parts(redis: Redis, keys: Keys, cfg: GatewaySettings) -> AdminParts:
    groups = GroupStore(redis, keys)
    quotas = UserQuotas(
        redis,
        keys,
        groups,
        cfg.turn_limits,
        {
            "conversations": cfg.quota_conversations,
            "messages": cfg.quota_messages,
            "bytes": cfg.quota_bytes,
        },
    )
    return AdminParts(
        accounts=Accounts(redis, keys, groups, quotas),
        invites=Invites(redis, keys),
        runtime=RuntimeSettings(redis, keys, cfg.default_signup_mode),
        groups=groups,
        quotas=quotas,
        usage=UsageReader(redis, keys),
        access=ModelAccess(redis, keys),
        audit=AuditLog(redis, keys, cfg.audit_maxlen),
        flags=FlagLog(redis, keys),
        signins=SignIns(redis, keys),
    )
