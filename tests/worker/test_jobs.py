"""Jobs on workers (``worker/jobs.py``) on real Redis: a retention sweep
deletes what the policies allow through the store and records its progress;
a job its worker left behind is taken over and goes on from the recorded
user; one delivered too often is set aside and audited."""

from __future__ import annotations

import time

import pytest
from redis.asyncio import Redis

from shared.audit import AuditFilter, AuditLog
from shared.conversation import Conversation, new_id
from shared.groups import GroupConfig, GroupStore
from shared.jobs import Job, Jobs
from shared.keys import WORKER_GROUP, Keys
from shared.store import ConversationStore
from worker import jobs as jobs_module
from worker.jobs import JobRunner

DAY = 86_400


async def conversations(redis: Redis, keys: Keys, uid: str, ages: list[int]) -> None:
    """Conversations last touched that many days ago (written as an import is)."""
    store = ConversationStore(redis, keys)
    for age in ages:
        ts = time.time() - age * DAY
        conv = Conversation(id=new_id(), owner=uid, title=f"{age}d", created_at=ts, updated_at=ts)
        await store.bulk.write(conv)


async def titles(redis: Redis, keys: Keys, uid: str) -> list[str]:
    page, _ = await ConversationStore(redis, keys).list_for_user(uid, limit=100)
    return sorted(c.title for c in page)


@pytest.fixture
async def world(redis: Redis, keys: Keys) -> JobRunner:
    groups = GroupStore(redis, keys)
    await groups.create(GroupConfig(name="short", retention_days=30, retention_on=True))
    await groups.create(GroupConfig(name="long", retention_days=365, retention_on=True))
    for uid in ("u1", "u2"):
        await groups.add_member("short", uid)
    await groups.add_member("long", "u2")  # the strictest applies: 30 days
    await groups.add_member("long", "u3")
    await conversations(redis, keys, "u1", [1, 40, 50])
    await conversations(redis, keys, "u2", [2, 31, 400])
    await conversations(redis, keys, "u3", [40, 400])
    await conversations(redis, keys, "u4", [400])  # no policy
    runner = JobRunner(redis, keys, "me", retention_interval=3600, audit_maxlen=1000)
    await runner.ensure_group()
    # The periodic sweep is not due in these tests: only the jobs they queue run.
    await redis.set(keys.retention_due(), "1", ex=3600)
    return runner


async def test_a_sweep_deletes_per_the_strictest_policy_and_records_it(
    redis: Redis, keys: Keys, world: JobRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jobs_module, "JOB_BATCH", 1)  # one conversation a batch
    job = await Jobs(redis, keys).enqueue(Job(kind="retention"))
    await world.poll()
    record = await Jobs(redis, keys).record(job)
    assert record is not None and record.status == "done" and record.deleted == 5
    assert await titles(redis, keys, "u1") == ["1d"]
    assert await titles(redis, keys, "u2") == ["2d"]
    assert await titles(redis, keys, "u3") == ["40d"]
    assert await titles(redis, keys, "u4") == ["400d"]
    assert await redis.xpending(keys.jobs(), WORKER_GROUP) == {
        "pending": 0,
        "min": None,
        "max": None,
        "consumers": [],
    }
    last = await redis.hgetall(keys.retention_last())
    assert last["job"] == job and last["deleted"] == "5"


async def test_a_job_left_by_a_dead_worker_is_taken_over_where_it_stopped(
    redis: Redis, keys: Keys, world: JobRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = await Jobs(redis, keys).enqueue(Job(kind="retention"))
    # A worker read it, finished the first user (u1) and died.
    await redis.xreadgroup(WORKER_GROUP, "dead", {keys.jobs(): ">"}, count=1)
    await Jobs(redis, keys).update(job, status="running", cursor="1", deleted=0)
    monkeypatch.setattr(jobs_module, "JOB_CLAIM_IDLE_S", 0.0)
    await world.poll()
    record = await Jobs(redis, keys).record(job)
    assert record is not None and record.status == "done"
    # u1 was the dead worker's (recorded as done): not gone over again.
    assert await titles(redis, keys, "u1") == ["1d", "40d", "50d"]
    assert await titles(redis, keys, "u2") == ["2d"]
    assert await titles(redis, keys, "u3") == ["40d"]


async def test_a_job_delivered_too_often_is_set_aside_and_audited(
    redis: Redis, keys: Keys, world: JobRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = await Jobs(redis, keys).enqueue(Job(kind="retention"))
    await redis.xreadgroup(WORKER_GROUP, "dead", {keys.jobs(): ">"}, count=1)
    monkeypatch.setattr(jobs_module, "JOB_CLAIM_IDLE_S", 0.0)
    monkeypatch.setattr(jobs_module, "JOB_MAX_DELIVERIES", 1)
    await world.poll()
    record = await Jobs(redis, keys).record(job)
    assert record is not None and record.status == "failed" and "delivered 2 times" in record.error
    assert await titles(redis, keys, "u1") == ["1d", "40d", "50d"]  # nothing deleted
    entries, _ = await AuditLog(redis, keys).read(AuditFilter(kinds=["job.failed"]))
    assert [e.detail["job"] for e in entries] == [job]
