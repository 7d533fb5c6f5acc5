"""Usage as the console shows it, from the daily counters the workers keep
(``shared/user_limits.py``): per user and model per UTC day, and everyone's
per model per day. No conversation is read: a month of one user is at most
31 ``HGETALL``\\s of their slot, the 30-day chart 30 of the day totals.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from pydantic import BaseModel
from redis.asyncio import Redis

from shared.keys import Keys
from shared.usage import usage_day


class Counts(BaseModel):
    turns: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, other: Counts) -> None:
        self.turns += other.turns
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens


class DayUsage(BaseModel):
    day: str
    #: Model id -> that model's counts on the day.
    models: dict[str, Counts]


def parse_day(fields: dict[str, Any]) -> dict[str, Counts]:
    """A usage hash (``turns:<m>``, ``prompt:<m>``, ``completion:<m>``) by model."""
    out: dict[str, Counts] = {}
    names = {"turns": "turns", "prompt": "prompt_tokens", "completion": "completion_tokens"}
    for field, value in fields.items():
        kind, sep, model = str(field).partition(":")
        if not sep or kind not in names:
            continue  # ``hit:*`` markers and the like
        counts = out.setdefault(model, Counts())
        setattr(counts, names[kind], getattr(counts, names[kind]) + int(value))
    return out


def last_days(days: int, now: float | None = None) -> list[str]:
    """The last ``days`` UTC days, oldest first, today included."""
    today = datetime.fromtimestamp(now if now is not None else time.time(), UTC)
    return [(today - timedelta(days=i)).strftime("%Y-%m-%d") for i in range(days - 1, -1, -1)]


def month_so_far(now: float | None = None) -> list[str]:
    today = datetime.fromtimestamp(now if now is not None else time.time(), UTC)
    return [f"{today:%Y-%m}-{d:02d}" for d in range(1, today.day + 1)]


class UsageReader:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def month_totals(self, uids: list[str]) -> dict[str, Counts]:
        """Each user's turns and tokens this UTC month."""
        days = month_so_far()
        pipe = self.redis.pipeline(transaction=False)
        for uid in uids:
            for day in days:
                pipe.hgetall(self.keys.user_usage(uid, day))
        rows = await pipe.execute()
        out: dict[str, Counts] = {}
        for i, uid in enumerate(uids):
            total = Counts()
            for fields in rows[i * len(days) : (i + 1) * len(days)]:
                for counts in parse_day(fields).values():
                    total.add(counts)
            out[uid] = total
        return out

    async def user_days(self, uid: str, days: int = 30) -> list[DayUsage]:
        names = last_days(days)
        pipe = self.redis.pipeline(transaction=False)
        for day in names:
            pipe.hgetall(self.keys.user_usage(uid, day))
        return [
            DayUsage(day=day, models=parse_day(fields))
            for day, fields in zip(names, await pipe.execute(), strict=True)
        ]

    async def total_days(self, days: int = 30) -> list[DayUsage]:
        """Everyone's usage per model per day (the console's chart)."""
        names = last_days(days)
        pipe = self.redis.pipeline(transaction=False)
        for day in names:
            pipe.hgetall(self.keys.usage_total(day))
        return [
            DayUsage(day=day, models=parse_day(fields))
            for day, fields in zip(names, await pipe.execute(), strict=True)
        ]

    async def today(self, uid: str) -> dict[str, Counts]:
        key = self.keys.user_usage(uid, usage_day(time.time()))
        return parse_day(cast(dict[str, Any], await self.redis.hgetall(key)))
