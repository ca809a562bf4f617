"""Job artifacts on a local folder: ``<root>/<job_id>/<name>``, written atomically, with sha256.

Each artifact has a sidecar ``<root>/<job_id>/.meta/<name>.json`` holding its size and sha256
(artifact names never start with a dot, so they cannot collide with it). A reader sees either
the old file or the new one, never a partial write.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from service.errors import ArtifactNotFound, InvalidArtifactName
from service.ids import is_id, shown
from service.schemas import ArtifactInfo

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$")
_CHUNK = 1024 * 1024


def check_name(name: str) -> str:
    """``name`` if it is a safe artifact name, else :class:`InvalidArtifactName`.

    Safe: 1-128 characters from ``A-Z a-z 0-9 _ . -``, not starting with ``.`` or ``-``, no
    ``..``. Example: ``model.ts``, ``metrics.json``.
    """
    if not _NAME.match(name) or ".." in name:
        raise InvalidArtifactName(
            f"invalid artifact name {name!r}: use 1-128 characters from A-Z a-z 0-9 _ . - "
            "(no '/', no '..', not starting with '.' or '-')"
        )
    return name


class ArtifactStore:
    """Per-job artifact folders under ``root``.

    Example:
        >>> store = ArtifactStore(Path(".atnas/artifacts"))       # doctest: +SKIP
        >>> store.put_bytes(job_id, "metrics.json", b"{}").sha256  # doctest: +SKIP
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def put_bytes(self, job_id: str, name: str, data: bytes) -> ArtifactInfo:
        """Writes ``data`` as artifact ``name`` of ``job_id`` atomically; returns its info."""
        folder = self._folder(job_id, create=True)
        check_name(name)
        with _AtomicFile(folder / name) as fh:
            fh.write(data)
        info = ArtifactInfo(name=name, size=len(data), sha256=hashlib.sha256(data).hexdigest())
        self._write_meta(folder, info)
        return info

    def put_file(self, job_id: str, name: str, src: Path) -> ArtifactInfo:
        """Copies the file ``src`` in as artifact ``name`` atomically; returns its info."""
        folder = self._folder(job_id, create=True)
        check_name(name)
        sha = hashlib.sha256()
        size = 0
        with open(src, "rb") as fin, _AtomicFile(folder / name) as fout:
            while chunk := fin.read(_CHUNK):
                fout.write(chunk)
                sha.update(chunk)
                size += len(chunk)
        info = ArtifactInfo(name=name, size=size, sha256=sha.hexdigest())
        self._write_meta(folder, info)
        return info

    def list(self, job_id: str) -> builtins.list[ArtifactInfo]:
        """The job's artifacts sorted by name (none yet: an empty list)."""
        folder = self._folder(job_id, create=False)
        meta = folder / ".meta"
        if not meta.is_dir():
            return []
        out = []
        for sidecar in sorted(meta.glob("*.json")):
            info = ArtifactInfo.model_validate_json(sidecar.read_bytes())
            if (folder / info.name).is_file():
                out.append(info)
        return out

    def info(self, job_id: str, name: str) -> ArtifactInfo:
        """Size and sha256 of one artifact (:class:`ArtifactNotFound` when missing)."""
        path = self.path(job_id, name)
        sidecar = path.parent / ".meta" / f"{name}.json"
        if not sidecar.is_file():
            raise ArtifactNotFound(f"job {shown(job_id)} has no artifact {shown(name)}")
        return ArtifactInfo.model_validate_json(sidecar.read_bytes())

    def path(self, job_id: str, name: str) -> Path:
        """The artifact's file (:class:`ArtifactNotFound` when missing)."""
        check_name(name)
        path = self._folder(job_id, create=False) / name
        if not path.is_file():
            raise ArtifactNotFound(f"job {shown(job_id)} has no artifact {shown(name)}")
        return path

    def delete_job(self, job_id: str) -> None:
        """Removes every artifact of ``job_id``."""
        shutil.rmtree(self._folder(job_id, create=False), ignore_errors=True)

    def _folder(self, job_id: str, create: bool) -> Path:
        if not is_id(job_id):
            raise InvalidArtifactName(f"invalid job id {shown(job_id)}")
        folder = self.root / job_id
        if create:
            (folder / ".meta").mkdir(parents=True, exist_ok=True)
        return folder

    def _write_meta(self, folder: Path, info: ArtifactInfo) -> None:
        with _AtomicFile(folder / ".meta" / f"{info.name}.json") as fh:
            fh.write(json.dumps(info.model_dump()).encode())


class _AtomicFile:
    """A temp file in the target's folder, fsynced and renamed over the target on success."""

    def __init__(self, target: Path) -> None:
        self.target = target
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".part")
        self._tmp = Path(name)
        self._fh = os.fdopen(fd, "wb")

    def __enter__(self) -> _AtomicFile:
        return self

    def write(self, data: bytes) -> None:
        self._fh.write(data)

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        try:
            if exc_type is None:
                self._fh.flush()
                os.fsync(self._fh.fileno())
            self._fh.close()
            if exc_type is None:
                os.replace(self._tmp, self.target)
                dir_fd = os.open(self.target.parent, os.O_RDONLY)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)
        finally:
            self._tmp.unlink(missing_ok=True)
