"""/v1/supernets: the meta-supernets that search jobs can use."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import JobsDep, TenantDep
from service.schemas import SupernetPublic

router = APIRouter(prefix="/v1/supernets", tags=["supernets"])


@router.get("")
def list_supernets(jobs: JobsDep, tenant: TenantDep) -> list[SupernetPublic]:
    """Lists succeeded meta_train jobs, newest first; their ids go in SearchSpec.supernet."""
    return jobs.supernets(tenant=tenant)
