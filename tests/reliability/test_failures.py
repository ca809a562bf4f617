"""Errors that would fail again fail once, with one line; a broken artifact store is one too.

A bad setting in a meta_train trial is not retried by Tune (the trial ran in one process);
a full (or read-only) artifact store fails the job with the file system's reason, and the
next job runs once the store is repaired.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from service.schemas import JobKind, JobStatus, MetaTrainSpec
from service.settings import Settings
from tests.reliability.conftest import (
    Service,
    drop_keys,
    make_settings,
    meta_train_spec,
    upload_classes,
    wait_final,
)
from workers.dispatcher import Dispatcher
from workers.meta_train_job import TRIAL_PIDS

pytestmark = pytest.mark.reliability


def _one_line(error: str | None) -> str:
    assert error is not None
    assert "\n" not in error and "\x1b" not in error and "Traceback" not in error
    assert len(error) <= 500
    return error


def test_a_bad_setting_in_a_trial_fails_once_with_one_line(service: Service) -> None:
    spec = MetaTrainSpec.model_validate(
        meta_train_spec(service.classes, budget=5).model_dump() | {"include": ["no-such-group"]}
    )
    job_id = service.submit(spec)  # straight to the store: the API would have said 422
    job = wait_final(service.jobs, job_id)
    assert job.status is JobStatus.failed
    assert _one_line(job.error) == (
        "include: unknown group(s) ['no-such-group']; groups are ['g0', 'g1']"
    )
    pids = (service.settings.data_dir / "work" / job_id / TRIAL_PIDS).read_text().split()
    assert len(pids) == 1  # the trial ran once: Tune did not retry it


@contextlib.contextmanager
def _broken_store(path: Path) -> Iterator[str]:
    """Makes ``path`` a full file system (a 64 KiB tmpfs, filled) where this process may mount
    one (root), else a read-only folder; yields the reason writes will fail with."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:  # root ignores permissions, so this is for everyone else
        path.chmod(0o555)
        try:
            yield "Permission denied"
        finally:
            path.chmod(0o755)
        return
    mount = ["mount", "-t", "tmpfs", "-o", "size=64k", "atnas-full", str(path)]
    done = subprocess.run(mount, capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot simulate a full disk: {done.stderr.strip()}")
    try:
        with contextlib.suppress(OSError), open(path / "filler", "wb") as f:
            f.write(b"\0" * 64 * 1024)  # fills it (ENOSPC on the last page at worst)
        yield "No space left on device"
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def test_a_full_artifact_store_fails_the_job_with_a_reason_and_the_next_job_runs(
    ray_address: str, redis_url: str, tmp_path: Path
) -> None:
    settings: Settings = make_settings(tmp_path / "data", redis_url, ray_address)
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    dispatcher = Dispatcher(settings, r, max_jobs=1)
    spec = meta_train_spec(upload_classes(dispatcher), budget=2)
    dispatcher.start()
    try:
        with _broken_store(settings.artifacts_dir) as why:
            job, _ = dispatcher.jobs.create(JobKind.meta_train, spec)
            failed = wait_final(dispatcher.jobs, job.id)
        again, _ = dispatcher.jobs.create(JobKind.meta_train, spec)
        succeeded = wait_final(dispatcher.jobs, again.id)
        alive = dispatcher.jobs.workers_alive()
    finally:
        dispatcher.stop(timeout=2.0)
        dispatcher.ctx.shutdown()
        drop_keys(settings)
        r.close()
    assert failed.status is JobStatus.failed
    error = _one_line(failed.error)
    assert error == f"could not store artifact supernet.pt: {why}"
    assert succeeded.status is JobStatus.succeeded, succeeded.error
    assert succeeded.attempts == 1
    assert (settings.artifacts_dir / again.id / "supernet.pt").is_file()
    assert dispatcher.worker_id in alive  # the dispatcher lived through it
