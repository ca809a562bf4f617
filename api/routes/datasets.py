"""/v1/datasets: upload, describe, list and remove datasets."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api.deps import DatasetsDep, JobsDep, SettingsDep, TenantDep
from api.upload import OPENAPI_BODY, receive_dataset
from service.auth import OPEN_TENANT
from service.schemas import DatasetPublic
from service.validation import check_dataset_unused

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])


@router.post("", status_code=201, openapi_extra=OPENAPI_BODY)
async def upload_dataset(
    request: Request, datasets: DatasetsDep, settings: SettingsDep, tenant: TenantDep
) -> DatasetPublic:
    """Uploads a zip of images in class folders (multipart field ``file``)."""
    return await receive_dataset(
        request, datasets, settings.max_upload_bytes, tenant or OPEN_TENANT
    )


@router.get("")
def list_datasets(datasets: DatasetsDep, tenant: TenantDep) -> list[DatasetPublic]:
    """Lists the datasets, newest first."""
    return datasets.list(tenant=tenant)


@router.get("/{dataset_id}")
def get_dataset(dataset_id: str, datasets: DatasetsDep, tenant: TenantDep) -> DatasetPublic:
    """Describes one dataset: classes, counts, groups, kind."""
    return datasets.get(dataset_id, tenant)


@router.delete("/{dataset_id}", status_code=204)
def delete_dataset(
    dataset_id: str, datasets: DatasetsDep, jobs: JobsDep, tenant: TenantDep
) -> Response:
    """Removes a dataset and its files (409 while a queued or running job reads it)."""
    datasets.get(dataset_id, tenant)  # 404 before 409
    check_dataset_unused(dataset_id, jobs)
    datasets.delete(dataset_id)
    return Response(status_code=204)
