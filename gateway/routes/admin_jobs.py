"""``/api/admin/...``: the retention policy's preview and sweeps (jobs run by
workers, ``worker/jobs.py``). Admin only."""

from __future__ import annotations

import time
from typing import Annotated, Any, cast

from fastapi import APIRouter, Path, status
from pydantic import BaseModel

from gateway.deps import AdminUser, ClientAddress, ServicesDep
from gateway.errors import ApiError
from shared import retention
from shared.audit import Party
from shared.jobs import Job, JobRecord, Jobs

router = APIRouter()


@router.get("/retention")
async def retention_preview(_: AdminUser, services: ServicesDep) -> retention.Preview:
    """Per group with a policy (on or not yet): how many conversations it
    would delete now; and the last sweep."""
    redis, keys = services.redis, services.settings.keys
    found = await retention.preview(redis, keys, time.time())
    last = cast(dict[str, Any], await redis.hgetall(keys.retention_last()))
    if last:
        found.last = {"job": last["job"], "at": float(last["at"]), "deleted": int(last["deleted"])}
    return found


class Queued(BaseModel):
    job: str


@router.post("/retention/run", status_code=status.HTTP_202_ACCEPTED)
async def run_retention(admin: AdminUser, services: ServicesDep, address: ClientAddress) -> Queued:
    """Queue a sweep now (workers also run one every hour while a policy is on)."""
    redis, keys = services.redis, services.settings.keys
    if not await retention.policies(redis, keys):
        raise ApiError("bad_request", "no group has a retention policy turned on")
    job_id = await Jobs(redis, keys).enqueue(Job(kind="retention", requested_by=admin.id))
    await services.admin.audit.record(
        "retention.run_requested",
        actor=Party(id=admin.id, name=admin.username),
        address=address,
        job=job_id,
    )
    return Queued(job=job_id)


@router.get("/jobs/{job_id}")
async def job_status(
    job_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")],
    _: AdminUser,
    services: ServicesDep,
) -> JobRecord:
    record = await Jobs(services.redis, services.settings.keys).record(job_id)
    if record is None:
        raise ApiError("not_found", "no such job (or it is older than 30 days)")
    return record
