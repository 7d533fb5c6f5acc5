"""Who may use which model: groups of users, and the groups each model allows.

A model's allowed groups come from the models file (``groups = [...]``; none:
everyone) unless an admin set them in the console, which is kept in Redis
(``keys.model_access()``) and wins, so every gateway sees a change at once.
A user's groups are a set on their own slot (``keys.user_groups(uid)``).

``GET /api/models``, the web client's picker (which shows what that route
lists) and turn acceptance all ask ``permits`` with the same two reads, so
they cannot disagree; a turn for a model the user may not use is refused
with ``forbidden`` before anything is written.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, cast

from redis.asyncio import Redis

from shared.keys import Keys
from shared.models_file import ModelCatalog, ModelSpec


def effective_groups(spec: ModelSpec, override: str | None) -> list[str]:
    """The groups allowed to use ``spec`` (empty: everyone), given the
    console's stored ``override`` (JSON list) if any."""
    if override is not None:
        try:
            groups = json.loads(override)
        except ValueError:
            groups = None
        if isinstance(groups, list):
            return [str(g) for g in groups]
    return list(spec.groups or [])


def permits(user_groups: Iterable[str], allowed: list[str]) -> bool:
    return not allowed or not set(allowed).isdisjoint(user_groups)


class ModelAccess:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    def queue_read(self, pipe: Any, uid: str, model_id: str) -> None:
        """Queue the two reads a turn's check needs (the user's groups, the
        model's override): ``check`` takes their replies."""
        pipe.smembers(self.keys.user_groups(uid))
        pipe.hget(self.keys.model_access(), model_id)

    @staticmethod
    def check(spec: ModelSpec, user_groups: Any, override: Any) -> bool:
        return permits(cast(set[str], user_groups or set()), effective_groups(spec, override))

    async def overrides(self) -> dict[str, str]:
        return cast(dict[str, str], await self.redis.hgetall(self.keys.model_access()))

    async def models_for(self, uid: str, catalog: ModelCatalog) -> list[ModelSpec]:
        """The models ``uid`` may use, in the models file's order."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.smembers(self.keys.user_groups(uid))
        pipe.hgetall(self.keys.model_access())
        groups, overrides = await pipe.execute()
        return [
            m for m in catalog.models if permits(groups, effective_groups(m, overrides.get(m.id)))
        ]

    async def set_override(self, model_id: str, groups: list[str] | None) -> None:
        """Restrict ``model_id`` to ``groups`` ([]: everyone); None: back to
        the models file's setting."""
        if groups is None:
            await self.redis.hdel(self.keys.model_access(), model_id)
        else:
            await self.redis.hset(self.keys.model_access(), model_id, json.dumps(sorted(groups)))
