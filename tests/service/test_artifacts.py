from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from service.artifacts import ArtifactStore, check_name
from service.errors import ArtifactNotFound, InvalidArtifactName

J1, J2 = "1" * 32, "2" * 32  # job ids have the shape service.ids hands out


def test_put_list_path(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "artifacts")
    data = b'{"acc": 0.9}'
    info = store.put_bytes(f"{J1}", "metrics.json", data)
    assert info.size == len(data) and info.sha256 == hashlib.sha256(data).hexdigest()
    src = tmp_path / "model.ts"
    src.write_bytes(os.urandom(3 * 1024 * 1024 + 7))
    info2 = store.put_file(f"{J1}", "model.ts", src)
    assert info2.sha256 == hashlib.sha256(src.read_bytes()).hexdigest()
    assert [a.name for a in store.list(f"{J1}")] == ["metrics.json", "model.ts"]
    assert store.path(f"{J1}", "model.ts").read_bytes() == src.read_bytes()
    assert store.info(f"{J1}", "model.ts") == info2
    # Only the artifacts and their sidecars are left: no temp files.
    left = sorted(p.relative_to(store.root).as_posix() for p in store.root.rglob("*"))
    assert left == [
        f"{J1}", f"{J1}/.meta", f"{J1}/.meta/metrics.json.json", f"{J1}/.meta/model.ts.json",
        f"{J1}/metrics.json", f"{J1}/model.ts",
    ]  # fmt: skip


def test_overwrite_is_atomic_and_updates_sha(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    store.put_bytes(J2, "a.txt", b"one")
    info = store.put_bytes(J2, "a.txt", b"two!")
    assert store.list(J2) == [info] and store.path(J2, "a.txt").read_bytes() == b"two!"


def test_failed_write_leaves_old_file(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    store.put_bytes(J2, "a.txt", b"old")
    with pytest.raises(FileNotFoundError):
        store.put_file(J2, "a.txt", tmp_path / "missing")
    assert store.path(J2, "a.txt").read_bytes() == b"old"
    assert [p.name for p in (tmp_path / J2).iterdir() if p.name.startswith(".tmp")] == []


@pytest.mark.parametrize(
    "name", ["", "../x", "a/b", "..", ".hidden", "-x", "a..b", "a b", "é.txt", "x" * 129, "a\\b"]
)
def test_bad_names(tmp_path: Path, name: str) -> None:
    store = ArtifactStore(tmp_path)
    with pytest.raises(InvalidArtifactName):
        check_name(name)
    with pytest.raises(InvalidArtifactName):
        store.put_bytes(J2, name, b"x")
    with pytest.raises(InvalidArtifactName):
        store.path(J2, name)


def test_bad_job_id_and_missing(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    with pytest.raises(InvalidArtifactName, match="job id"):
        store.put_bytes("../j", "a.txt", b"x")
    assert store.list("3" * 32) == []
    with pytest.raises(ArtifactNotFound, match=r"has no artifact 'a\.txt'"):
        store.path("3" * 32, "a.txt")
