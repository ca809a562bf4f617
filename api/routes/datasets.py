"""/v1/datasets: upload, describe, list and remove datasets."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from api.deps import DatasetsDep, JobsDep, SettingsDep, TenantDep
from api.upload import OPENAPI_BODY, receive_dataset
from service.auth import OPEN_TENANT
from service.schemas import DatasetPublic
from service.thumbnails import thumbnail
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


@router.get(
    "/{dataset_id}/thumbnail",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}, "description": "a PNG preview"}},
)
def dataset_thumbnail(
    dataset_id: str,
    datasets: DatasetsDep,
    tenant: TenantDep,
    class_name: Annotated[str, Query(alias="class", min_length=1, max_length=1024)],
    i: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    size: Annotated[int, Query(ge=8, le=256)] = 64,
) -> Response:
    """One image of a class (the i-th), shrunk to fit size x size pixels, as a PNG."""
    datasets.get(dataset_id, tenant)
    png = thumbnail(datasets.path(dataset_id), class_name, i, size)
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})


@router.delete("/{dataset_id}", status_code=204)
def delete_dataset(
    dataset_id: str, datasets: DatasetsDep, jobs: JobsDep, tenant: TenantDep
) -> Response:
    """Removes a dataset and its files (409 while a queued or running job reads it)."""
    datasets.get(dataset_id, tenant)  # 404 before 409
    check_dataset_unused(dataset_id, jobs)
    datasets.delete(dataset_id)
    return Response(status_code=204)
