"""Uploaded datasets: streamed to disk under a size cap, checked, then stored atomically.

On disk: ``<data_dir>/datasets/<id>/data.zip``; in Redis: the record (classes, counts, ...).
"""

from __future__ import annotations

import builtins
import hashlib
import os
import shutil
import tempfile
import threading
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import Any, BinaryIO

import redis

from service.auth import OPEN_TENANT
from service.errors import DatasetNotFound, UploadTooLarge
from service.ids import is_id, new_id, shown
from service.keys import Keys
from service.schemas import DatasetPublic
from service.zipcheck import UploadLimits, check_zip

CHUNK_BYTES = 1024 * 1024
# Zips checked at once per process: bounds the API's memory when many uploads finish together
# (three 32 MiB images at once peaked at 199 MB; benchmarks/upload_memory.py).
CONCURRENT_CHECKS = 1
_CHECKS = threading.BoundedSemaphore(CONCURRENT_CHECKS)


class UploadSink:
    """A temporary file that an upload is streamed into, counting bytes and hashing them.

    Past ``max_bytes`` it deletes itself and raises :class:`UploadTooLarge`. Use it as a
    context manager: leaving the block without :meth:`DatasetStore.commit_upload` taking the
    file removes it, so nothing is left on disk.
    """

    def __init__(self, folder: Path, max_bytes: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=folder, prefix="upload-", suffix=".part")
        self.path = Path(name)
        self._file: BinaryIO | None = os.fdopen(fd, "wb")
        self.max_bytes = max_bytes
        self.size = 0
        self._sha = hashlib.sha256()

    def write(self, chunk: bytes) -> None:
        """Appends ``chunk``; :class:`UploadTooLarge` (and the file removed) past the cap."""
        if self._file is None:
            raise RuntimeError("the upload sink is closed")
        self.size += len(chunk)
        if self.size > self.max_bytes:
            self.discard()
            raise UploadTooLarge(f"the upload exceeds the limit of {self.max_bytes} bytes")
        self._file.write(chunk)
        self._sha.update(chunk)

    def finish(self) -> str:
        """Flushes the file to disk; returns the sha256 of what was written."""
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None
        return self._sha.hexdigest()

    def discard(self) -> None:
        """Closes and removes the temporary file (idempotent)."""
        if self._file is not None:
            self._file.close()
            self._file = None
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> UploadSink:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.discard()  # after a commit the file has moved away and this only closes


class DatasetRecord(DatasetPublic):
    """A dataset as stored: the public view plus its owner."""

    # Records from before tenancy belong to the open tenant (``service.auth``).
    tenant: str = OPEN_TENANT

    def public(self) -> DatasetPublic:
        """The view the API returns."""
        return DatasetPublic.model_validate(
            self.model_dump(include=set(DatasetPublic.model_fields))
        )


class DatasetStore:
    """Datasets on disk under ``root`` and their records in Redis.

    Example:
        >>> store = DatasetStore(r, Keys("atnas"), Path(".atnas/datasets"))  # doctest: +SKIP
        >>> with open("omniglot.zip", "rb") as f:                             # doctest: +SKIP
        ...     ds = store.create_from_upload(f, "omniglot.zip", 512 * 2**20)
    """

    def __init__(
        self, r: redis.Redis, keys: Keys, root: Path, *, limits: UploadLimits | None = None
    ) -> None:
        self._r = r
        self._keys = keys
        self.root = root
        # What an upload may hold (entries, bytes, pixels, depth); see service.zipcheck.
        self.limits = limits or UploadLimits()

    # --- creation -----------------------------------------------------------------------
    def open_upload(self, max_bytes: int) -> UploadSink:
        """A sink to stream an upload into (same filesystem as the datasets, for os.replace)."""
        return UploadSink(self.root / ".incoming", max_bytes)

    def create_from_upload(self, stream: BinaryIO, filename: str, max_bytes: int) -> DatasetPublic:
        """Reads ``stream`` in chunks into a new dataset; see :meth:`commit_upload`."""
        with self.open_upload(max_bytes) as sink:
            while chunk := stream.read(CHUNK_BYTES):
                sink.write(chunk)
            return self.commit_upload(sink, filename)

    def commit_upload(
        self, sink: UploadSink, filename: str, tenant: str = OPEN_TENANT
    ) -> DatasetPublic:
        """Checks the uploaded zip and stores it as a dataset of ``tenant``.

        Raises :class:`InvalidDataset` (422) with a reason when the file is not a zip, has no
        class folder with images, or holds an image that does not decode (naming it), and
        :class:`UploadTooLarge` (413) past a limit of ``self.limits``. At most
        :data:`CONCURRENT_CHECKS` zips are checked at once in a process (each may hold one image
        of up to ``max_image_bytes`` in memory); others wait their turn.
        """
        sha256 = sink.finish()
        with _CHECKS:
            layout = check_zip(sink.path, self.limits)
        dataset_id = new_id()
        folder = self.root / dataset_id
        folder.mkdir(parents=True)
        os.replace(sink.path, folder / "data.zip")
        _fsync_dir(folder)
        record = DatasetRecord(
            id=dataset_id,
            tenant=tenant,
            filename=_clean_filename(filename),
            size=sink.size,
            sha256=sha256,
            kind=layout.kind,
            classes=layout.classes,
            counts=layout.counts,
            groups=layout.groups,
            query_counts=layout.query_counts,
            created_at=datetime.now(timezone.utc),
        )
        try:
            with self._r.pipeline(transaction=True) as pipe:
                pipe.set(self._keys.dataset(dataset_id), record.model_dump_json())
                score = record.created_at.timestamp()
                for index in (self._keys.dataset_index(), self._keys.dataset_index(tenant)):
                    pipe.zadd(index, {dataset_id: score})
                pipe.execute()
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return record.public()

    # --- reading and removal ------------------------------------------------------------
    def get(self, dataset_id: str, tenant: str | None = None) -> DatasetPublic:
        """The dataset's public record, or :class:`DatasetNotFound` (also for another
        tenant's dataset when ``tenant`` is given)."""
        return self._record(dataset_id, tenant).public()

    def _record(self, dataset_id: str, tenant: str | None = None) -> DatasetRecord:
        raw = self._r.get(self._keys.dataset(dataset_id)) if is_id(dataset_id) else None
        record = None if raw is None else DatasetRecord.model_validate_json(raw)
        if record is None or (tenant is not None and record.tenant != tenant):
            raise DatasetNotFound(f"no dataset with id {shown(dataset_id)}")
        return record

    def list(self, limit: int = 1000, tenant: str | None = None) -> builtins.list[DatasetPublic]:
        """Datasets (of ``tenant`` when given, else of every tenant), newest first."""
        ids: Any = self._r.zrevrange(self._keys.dataset_index(tenant), 0, limit - 1)
        if not ids:
            return []
        raws: Any = self._r.mget([self._keys.dataset(i) for i in ids])
        return [DatasetRecord.model_validate_json(raw).public() for raw in raws if raw is not None]

    def path(self, dataset_id: str) -> Path:
        """The dataset's zip on disk (:class:`DatasetNotFound` for an unknown id)."""
        self.get(dataset_id)
        return self.root / dataset_id / "data.zip"

    def delete(self, dataset_id: str) -> None:
        """Removes the record, then the files (:class:`DatasetNotFound` for an unknown id)."""
        record = self._record(dataset_id)
        with self._r.pipeline(transaction=True) as pipe:
            pipe.delete(self._keys.dataset(dataset_id))
            pipe.zrem(self._keys.dataset_index(), dataset_id)
            pipe.zrem(self._keys.dataset_index(record.tenant), dataset_id)
            pipe.execute()
        shutil.rmtree(self.root / dataset_id, ignore_errors=True)


def _clean_filename(filename: str) -> str:
    """The last path component of a client-supplied name, bounded in length."""
    name = PurePosixPath(filename.replace("\\", "/")).name.strip()
    return (name or "upload.zip")[:255]


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
