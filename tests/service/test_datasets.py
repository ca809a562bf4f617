from __future__ import annotations

import io
from pathlib import Path

import pytest

from service.datasets import DatasetStore
from service.errors import DatasetNotFound, InvalidDataset, UploadTooLarge
from tests.conftest import Zips


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_good_zip(datasets: DatasetStore, zips: type[Zips]) -> None:
    data = zips.classes({"Latin/a": 3, "Latin/b": 2, "Greek/c": 4}, wrapper="bg/")
    ds = datasets.create_from_upload(io.BytesIO(data), "../evil/omni.zip", max_bytes=10**6)
    assert ds.kind == "classes" and ds.filename == "omni.zip" and ds.size == len(data)
    assert ds.classes == ["Greek/c", "Latin/a", "Latin/b"]
    assert ds.counts == {"Greek/c": 4, "Latin/a": 3, "Latin/b": 2}
    assert ds.groups == ["Greek", "Latin"]
    assert datasets.get(ds.id) == ds
    assert datasets.path(ds.id).read_bytes() == data
    assert _files(datasets.root) == [datasets.root / ds.id / "data.zip"]
    assert [d.id for d in datasets.list()] == [ds.id]


def test_task_zip(datasets: DatasetStore, zips: type[Zips]) -> None:
    data = zips.task({"cat": 2, "dog": 2}, {"cat": 1, "dog": 3})
    ds = datasets.create_from_upload(io.BytesIO(data), "task.zip", max_bytes=10**6)
    assert ds.kind == "task" and ds.classes == ["cat", "dog"]
    assert ds.counts == {"cat": 2, "dog": 2} and ds.query_counts == {"cat": 1, "dog": 3}


def test_not_a_zip(datasets: DatasetStore) -> None:
    with pytest.raises(InvalidDataset, match="not a zip archive"):
        datasets.create_from_upload(io.BytesIO(b"hello" * 100), "x.zip", max_bytes=10**6)
    assert _files(datasets.root) == []


def test_zip_without_classes(datasets: DatasetStore, zips: type[Zips]) -> None:
    data = zips.zip({"readme.txt": b"hi", "a.png": zips.png()})
    with pytest.raises(InvalidDataset, match="no class folders"):
        datasets.create_from_upload(io.BytesIO(data), "x.zip", max_bytes=10**6)
    assert _files(datasets.root) == []


def test_corrupt_image_is_named(datasets: DatasetStore, zips: type[Zips]) -> None:
    good = zips.png()
    data = zips.zip({"cat/1.png": good, "cat/2.png": good[:40], "dog/1.png": good})
    with pytest.raises(InvalidDataset, match=r"^cat/2\.png: not a readable image"):
        datasets.create_from_upload(io.BytesIO(data), "x.zip", max_bytes=10**6)
    data = zips.zip({"cat/1.png": b"not an image at all", "dog/1.png": good})
    with pytest.raises(InvalidDataset, match=r"cat/1\.png"):
        datasets.create_from_upload(io.BytesIO(data), "x.zip", max_bytes=10**6)
    assert _files(datasets.root) == []


def test_too_large_leaves_nothing(datasets: DatasetStore, zips: type[Zips]) -> None:
    data = zips.classes({"a": 5, "b": 5})
    with pytest.raises(UploadTooLarge, match=f"limit of {len(data) - 1} bytes"):
        datasets.create_from_upload(io.BytesIO(data), "x.zip", max_bytes=len(data) - 1)
    assert _files(datasets.root) == []
    assert datasets.list() == []


def test_delete_and_unknown(datasets: DatasetStore, zips: type[Zips]) -> None:
    ds = datasets.create_from_upload(io.BytesIO(zips.classes({"a": 1})), "x.zip", 10**6)
    datasets.delete(ds.id)
    assert _files(datasets.root) == [] and datasets.list() == []
    for call in (datasets.get, datasets.path, datasets.delete):
        with pytest.raises(DatasetNotFound, match="no dataset with id"):
            call(ds.id)
