"""/v1/jobs: submit, inspect, list and cancel jobs; list and download their artifacts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import FileResponse

from api.deps import ArtifactsDep, DatasetsDep, JobsDep, ServicesDep, TenantDep
from service.auth import OPEN_TENANT
from service.schemas import (
    ArtifactInfo,
    JobCreate,
    JobKind,
    JobPage,
    JobPublic,
    JobStatus,
    MetaTrainJobCreate,
    SearchJobCreate,
)
from service.validation import validate_spec

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


@router.post("", status_code=202)
def submit_job(
    body: JobCreate,
    response: Response,
    jobs: JobsDep,
    datasets: DatasetsDep,
    tenant: TenantDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JobPublic:
    """Queues a meta_train or search job; a repeated Idempotency-Key returns the same job."""
    create: MetaTrainJobCreate | SearchJobCreate = body
    kind = create.job_kind
    job, created = jobs.create(
        kind,
        create.spec,
        idempotency_key,
        check=lambda: validate_spec(kind, create.spec, jobs, datasets, tenant),
        tenant=tenant or OPEN_TENANT,
    )
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    return job.public()


@router.get("")
def list_jobs(
    jobs: JobsDep,
    tenant: TenantDep,
    status: JobStatus | None = None,
    kind: JobKind | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: str | None = None,
) -> JobPage:
    """Lists jobs newest first, filtered by status and kind; pass next_cursor for more."""
    page, next_cursor = jobs.list(
        status=status, kind=kind, limit=limit, cursor=cursor, tenant=tenant
    )
    return JobPage(items=[j.public() for j in page], next_cursor=next_cursor)


@router.get("/{job_id}")
async def get_job(job_id: str, services: ServicesDep, tenant: TenantDep) -> JobPublic:
    """Status, progress, result and error of one job."""
    # The route clients poll: served on the event loop with the asyncio Redis client.
    job = await services.jobs.get_async(services.async_redis(), job_id, tenant)
    return job.public()


@router.post("/{job_id}/cancel")
def cancel_job(job_id: str, jobs: JobsDep, tenant: TenantDep) -> JobPublic:
    """Cancels a queued job at once, or asks a running one to stop."""
    jobs.get(job_id, tenant)  # another tenant's job is not found
    return jobs.request_cancel(job_id).public()


@router.get("/{job_id}/artifacts")
def list_artifacts(
    job_id: str, jobs: JobsDep, artifacts: ArtifactsDep, tenant: TenantDep
) -> list[ArtifactInfo]:
    """Lists the job's artifacts with size and sha256."""
    jobs.get(job_id, tenant)
    return artifacts.list(job_id)


@router.get("/{job_id}/artifacts/{name}", response_class=FileResponse)
def download_artifact(
    job_id: str, name: str, jobs: JobsDep, artifacts: ArtifactsDep, tenant: TenantDep
) -> FileResponse:
    """Downloads one artifact (its sha256 is in the X-Content-SHA256 header)."""
    jobs.get(job_id, tenant)
    info = artifacts.info(job_id, name)
    return FileResponse(
        artifacts.path(job_id, name),
        media_type="application/octet-stream",
        filename=name,
        headers={"X-Content-SHA256": info.sha256},
    )
