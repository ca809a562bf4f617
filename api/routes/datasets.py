"""/v1/datasets: upload, describe, list and remove datasets."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api.deps import DatasetsDep, JobsDep, SettingsDep
from api.upload import OPENAPI_BODY, receive_dataset
from service.schemas import DatasetPublic
from service.validation import check_dataset_unused

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])


@router.post("", status_code=201, openapi_extra=OPENAPI_BODY)
async def upload_dataset(
    request: Request, datasets: DatasetsDep, settings: SettingsDep
) -> DatasetPublic:
    """Uploads a zip of images in class folders (multipart field ``file``)."""
    return await receive_dataset(request, datasets, settings.max_upload_bytes)


@router.get("")
def list_datasets(datasets: DatasetsDep) -> list[DatasetPublic]:
    """Lists the datasets, newest first."""
    return datasets.list()


@router.get("/{dataset_id}")
def get_dataset(dataset_id: str, datasets: DatasetsDep) -> DatasetPublic:
    """Describes one dataset: classes, counts, groups, kind."""
    return datasets.get(dataset_id)


@router.delete("/{dataset_id}", status_code=204)
def delete_dataset(dataset_id: str, datasets: DatasetsDep, jobs: JobsDep) -> Response:
    """Removes a dataset and its files (409 while a queued or running job reads it)."""
    datasets.get(dataset_id)  # 404 before 409
    check_dataset_unused(dataset_id, jobs)
    datasets.delete(dataset_id)
    return Response(status_code=204)
