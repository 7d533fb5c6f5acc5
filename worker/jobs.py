"""Jobs on workers (``shared/jobs.py``): today the retention sweep.

Every worker polls the job stream (consumer group ``workers``, one job at a
time per worker): a job another worker left pending past
``JOB_CLAIM_IDLE_S`` is taken over first (a killed worker), else a new one
is read. A job records its progress after each batch (``Jobs.add_deleted``,
with the index of the user it is at) and refreshes its claim, so a takeover
goes on from there; deleting a conversation twice is harmless anyway. A job
delivered ``JOB_MAX_DELIVERIES`` times is set aside as failed, with an audit
entry.

The periodic sweep is queued by whichever worker first sets
``keys.retention_due()`` (SET NX with the interval as TTL): N workers queue
one sweep per interval, and only while some group has a policy on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from shared import retention
from shared.audit import AuditLog
from shared.jobs import Job, Jobs
from shared.keys import (
    JOB_BATCH,
    JOB_BATCH_PAUSE_S,
    JOB_CLAIM_IDLE_S,
    JOB_MAX_DELIVERIES,
    WORKER_GROUP,
    Keys,
)
from shared.store import ConversationStore

log = logging.getLogger(__name__)


@dataclass(eq=False)
class JobRunner:
    """Runs the admin's jobs (``shared/jobs.py``) in batches, between turns;
    ``done`` counts the jobs finished."""

    redis: Redis
    keys: Keys
    consumer: str
    _: KW_ONLY
    retention_interval: float
    audit_maxlen: int
    done: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.jobs = Jobs(self.redis, self.keys)
        self.store = ConversationStore(self.redis, self.keys)
        self.audit = AuditLog(self.redis, self.keys, self.audit_maxlen)

    async def ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(self.keys.jobs(), WORKER_GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def poll(self) -> None:
        """One round: queue the periodic sweep if due, then run one job if any."""
        await self._schedule()
        found = await self._next()
        if found is None:
            return
        entry_id, job, deliveries = found
        if deliveries > JOB_MAX_DELIVERIES:
            await self._fail(entry_id, job, f"delivered {deliveries} times (its workers died)")
            return
        try:
            await self.run(entry_id, job)
        except (RedisError, OSError):
            raise  # the duty loop logs it; the job stays pending and is taken over
        except Exception:
            # A bug or bad data: logged with its trace; the entry stays pending,
            # is retried after JOB_CLAIM_IDLE_S and set aside past the limit.
            log.exception("job %s (%s) failed", job.id, job.kind)

    async def _schedule(self) -> None:
        key = self.keys.retention_due()
        if not await self.redis.set(key, "1", nx=True, ex=max(1, int(self.retention_interval))):
            return
        if await retention.policies(self.redis, self.keys):
            await self.jobs.enqueue(Job(kind="retention"))

    async def _next(self) -> tuple[str, Job, int] | None:
        stream = self.keys.jobs()
        _, claimed, *_ = await self.redis.xautoclaim(
            stream, WORKER_GROUP, self.consumer, int(JOB_CLAIM_IDLE_S * 1000), "0-0", count=1
        )
        rows = cast(list[tuple[str, dict[str, str]]], claimed)
        if not rows:
            # RESP2 reply: [(stream, [(id, fields)])]; redis-py types it loosely.
            read = cast(
                list[tuple[str, list[tuple[str, dict[str, str]]]]],
                await self.redis.xreadgroup(WORKER_GROUP, self.consumer, {stream: ">"}, count=1),
            )
            rows = read[0][1] if read else []
        if not rows:
            return None
        entry_id, fields = rows[0]
        pending = await self.redis.xpending_range(
            stream, WORKER_GROUP, min=entry_id, max=entry_id, count=1
        )
        deliveries = int(pending[0]["times_delivered"]) if pending else 1
        try:
            job = Job.model_validate_json(fields["d"])
        except (KeyError, ValueError):
            await self.redis.xack(stream, WORKER_GROUP, entry_id)
            log.warning("job entry %s is not a job; dropped", entry_id)
            return None
        return entry_id, job, deliveries

    async def run(self, entry_id: str, job: Job) -> None:
        await self.jobs.update(job.id, status="running")
        if job.kind == "retention":
            deleted = await self._retention(entry_id, job)
        else:  # pragma: no cover - a kind of a newer release
            await self._fail(entry_id, job, f"unknown job kind {job.kind!r}")
            return
        pipe = self.redis.pipeline(transaction=False)
        pipe.xack(self.keys.jobs(), WORKER_GROUP, entry_id)
        pipe.hset(
            self.keys.retention_last(),
            mapping=cast(Any, {"job": job.id, "at": time.time(), "deleted": deleted}),
        )
        await pipe.execute()
        await self.jobs.update(job.id, status="done")
        await self.audit.record("retention.swept", job=job.id, conversations=deleted)
        self.done += 1
        log.info("retention sweep %s: %d conversations deleted", job.id, deleted)

    async def _retention(self, entry_id: str, job: Job) -> int:
        """Delete what the policies allow, user by user; the cutoffs are the
        job's (its creation time), so a takeover deletes the same set."""
        record = await self.jobs.record(job.id)
        plan = await retention.policies(self.redis, self.keys)
        users = sorted(plan)
        start = int(record.cursor) if record and record.cursor.isdigit() else 0
        deleted = record.deleted if record else 0
        for index in range(start, len(users)):
            uid = users[index]
            cutoff = job.created_at - plan[uid] * retention.DAY_S
            async for ids in retention.expired(self.store, uid, cutoff, JOB_BATCH):
                for cid in ids:
                    await self.store.delete(cid, uid)
                deleted += len(ids)
                await self.jobs.add_deleted(job.id, len(ids), str(index))
                await self._keep_claim(entry_id)
                await asyncio.sleep(JOB_BATCH_PAUSE_S)  # turns go first
            await self.jobs.update(job.id, cursor=str(index + 1))
        return deleted

    async def _keep_claim(self, entry_id: str) -> None:
        """Reset the entry's idle time: this worker is alive and at it."""
        await self.redis.xclaim(
            self.keys.jobs(), WORKER_GROUP, self.consumer, 0, [entry_id], justid=True
        )

    async def _fail(self, entry_id: str, job: Job, why: str) -> None:
        await self.redis.xack(self.keys.jobs(), WORKER_GROUP, entry_id)
        await self.jobs.update(job.id, status="failed", error=why)
        await self.audit.record("job.failed", job=job.id, job_kind=job.kind, why=why)
        log.error("job %s (%s) set aside: %s", job.id, job.kind, why)
