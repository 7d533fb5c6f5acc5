"""Jobs for workers: long work that must not run inside a request (DESIGN.md:
"heavy or long work is a job on a stream").

A job is an entry on ``keys.jobs()`` (consumer group ``workers``, like
turns: at least once, taken over when its worker dies, set aside after
``JOB_MAX_DELIVERIES``) plus a record ``keys.job(id)`` holding its progress:
each batch the worker finishes is written there before the next, so a worker
that takes the job over continues where the last one stopped, and nothing
done is done twice. Kinds:

- ``retention``: delete every conversation past its owner's retention
  policy (the strictest of their groups'), user by user, in batches
  (``shared/retention.py``; run by ``worker/jobs.py``).

This module is the only writer of the job stream.
"""

from __future__ import annotations

import time
from typing import Any, Literal, cast

from pydantic import BaseModel, Field
from redis.asyncio import Redis

from shared.conversation import new_id
from shared.keys import JOB_RECORD_TTL_S, Keys

JobKind = Literal["retention"]
JobStatus = Literal["queued", "running", "done", "failed"]


class Job(BaseModel):
    id: str = Field(default_factory=new_id)
    kind: JobKind
    created_at: float = Field(default_factory=time.time)
    #: Who asked for it: an admin's id, or "system" (the periodic sweep).
    requested_by: str = "system"
    params: dict[str, str] = Field(default_factory=dict)


class JobRecord(BaseModel):
    """A job's progress and outcome, as the console shows it."""

    id: str
    kind: str
    status: JobStatus = "queued"
    created_at: float = 0.0
    updated_at: float = 0.0
    #: Conversations deleted so far.
    deleted: int = 0
    #: Where a takeover resumes (the kind's own cursor).
    cursor: str = ""
    error: str = ""


class Jobs:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def enqueue(self, job: Job) -> str:
        pipe = self.redis.pipeline(transaction=False)
        self.queue(pipe, job)
        await pipe.execute()
        return job.id

    def queue(self, pipe: Any, job: Job) -> None:
        """Queue ``job`` and its record on ``pipe`` (with the action that asked for it)."""
        record = self.keys.job(job.id)
        pipe.hset(
            record,
            mapping={
                "id": job.id,
                "kind": job.kind,
                "status": "queued",
                "created_at": job.created_at,
                "updated_at": job.created_at,
            },
        )
        pipe.expire(record, JOB_RECORD_TTL_S)
        pipe.xadd(self.keys.jobs(), {"d": job.model_dump_json()})

    async def record(self, job_id: str) -> JobRecord | None:
        raw = cast(dict[str, str], await self.redis.hgetall(self.keys.job(job_id)))
        return JobRecord.model_validate(raw) if raw else None

    async def update(self, job_id: str, **fields: str | int | float) -> None:
        """Record progress (status, cursor, counts) before the next step."""
        key = self.keys.job(job_id)
        mapping: dict[str, str | int | float] = {**fields, "updated_at": time.time()}
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(key, mapping=cast(Any, mapping))
        pipe.expire(key, JOB_RECORD_TTL_S)
        await pipe.execute()

    async def add_deleted(self, job_id: str, n: int, cursor: str) -> None:
        """``n`` more conversations deleted, and where to go on from: one write."""
        key = self.keys.job(job_id)
        pipe = self.redis.pipeline(transaction=False)
        pipe.hincrby(key, "deleted", n)
        pipe.hset(key, mapping={"cursor": cursor, "updated_at": time.time(), "status": "running"})
        await pipe.execute()
