from __future__ import annotations

import os
import time
from pathlib import Path

from service.datasets import DatasetStore
from service.incoming import INCOMING, STALE_AFTER_S, sweep_stale_parts


def _aged(path: Path, age_s: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"half an upload")
    then = time.time() - age_s
    os.utime(path, (then, then))
    return path


def test_only_stale_part_files_are_removed(tmp_path: Path) -> None:
    incoming = tmp_path / INCOMING
    stale = _aged(incoming / "upload-old.part", STALE_AFTER_S + 60)
    fresh = _aged(incoming / "upload-new.part", 60)
    other = _aged(incoming / "notes.txt", STALE_AFTER_S + 60)
    dataset = _aged(tmp_path / ("0" * 32) / "data.zip", STALE_AFTER_S + 60)
    assert sweep_stale_parts(tmp_path) == [stale]
    assert not stale.exists() and fresh.exists() and other.exists() and dataset.exists()
    assert sweep_stale_parts(tmp_path, older_than_s=0, now=time.time() + 1) == [fresh]


def test_a_missing_folder_is_nothing_to_sweep(tmp_path: Path) -> None:
    assert sweep_stale_parts(tmp_path / "nowhere") == []


def test_uploads_stream_into_the_swept_folder(datasets: DatasetStore) -> None:
    with datasets.open_upload(max_bytes=10) as sink:
        assert sink.path.parent == datasets.root / INCOMING and sink.path.suffix == ".part"
        assert sink.path.exists()
    assert not sink.path.exists()
