"""The dispatcher runs queued jobs to a final status, with real Redis (both backends)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from atnas.errors import DatasetError
from service.jobs import JobRecord, JobStore
from service.schemas import JobKind, JobPublic, JobStatus, SearchSpec
from service.settings import Settings
from workers.context import WorkerContext
from workers.dispatcher import Dispatcher
from workers.progress import JobProgress

Runner = Callable[[WorkerContext, JobRecord], dict[str, Any]]


def _dispatcher(r: redis.Redis, prefix: str, tmp_path: Path, runner: Runner) -> Dispatcher:
    settings = Settings(data_dir=tmp_path, key_prefix=prefix, heartbeat_ttl_s=1.5)
    return Dispatcher(
        settings, r, max_jobs=2, runners={JobKind.search: runner, JobKind.meta_train: runner}
    )


def _wait(store: JobStore, job_id: str, timeout: float = 20.0) -> JobPublic:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = store.get(job_id)
        if job.status in (JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still {store.get(job_id).status}")


def _submit(store: JobStore) -> str:
    job, _ = store.create(JobKind.search, SearchSpec(supernet="s", dataset="d"))
    return job.id


@pytest.mark.parametrize(
    ("runner", "status", "detail"),
    [
        (lambda ctx, job: {"answer": 42}, JobStatus.succeeded, None),
        (
            lambda ctx, job: (_ for _ in ()).throw(DatasetError("class 'x' has 1 image")),
            JobStatus.failed,
            "class 'x' has 1 image",
        ),
        (
            lambda ctx, job: (_ for _ in ()).throw(ValueError("boom")),
            JobStatus.failed,
            "internal error",
        ),
        (
            lambda ctx, job: (_ for _ in ()).throw(
                DatasetError(
                    "\x1b[31mTraceback (most recent call last):\n"
                    + "  x\n" * 500
                    + "DatasetError: no classes\x1b[0m"
                )
            ),
            JobStatus.failed,
            "DatasetError: no classes",
        ),
        (
            lambda ctx, job: (_ for _ in ()).throw(PermissionError(13, "Permission denied", "/a")),
            JobStatus.failed,
            "storage error: [Errno 13] Permission denied: '/a'",
        ),
    ],
    ids=["succeeds", "typed-error", "bug", "traceback", "disk"],
)
def test_final_status(
    redis_client: redis.Redis,
    key_prefix: str,
    tmp_path: Path,
    runner: Runner,
    status: JobStatus,
    detail: str | None,
) -> None:
    d = _dispatcher(redis_client, key_prefix, tmp_path, runner)
    d.start()
    try:
        job = _wait(d.jobs, _submit(d.jobs))
    finally:
        d.stop()
    assert job.status is status
    if status is JobStatus.succeeded:
        assert job.result == {"answer": 42}
    else:
        assert detail is not None and job.error is not None and detail in job.error
        assert "\n" not in job.error and "\x1b" not in job.error and len(job.error) <= 500
    assert d.jobs.queue.pending() == 0  # acked


def test_cancel_of_a_running_job(
    redis_client: redis.Redis, key_prefix: str, tmp_path: Path
) -> None:
    started = []

    def runner(ctx: WorkerContext, job: JobRecord) -> dict[str, Any]:
        progress = JobProgress(ctx.jobs, job.id, interval=0.0)
        for step in range(2000):
            started.append(step)
            progress.report("search", step=step)
            time.sleep(0.01)
        return {}

    d = _dispatcher(redis_client, key_prefix, tmp_path, runner)
    d.start()
    try:
        job_id = _submit(d.jobs)
        while not started:
            time.sleep(0.01)
        d.jobs.request_cancel(job_id)
        job = _wait(d.jobs, job_id)
    finally:
        d.stop()
    assert job.status is JobStatus.cancelled
    assert len(started) < 2000
    assert job.progress is not None and job.progress.phase == "search"


def test_jobs_run_concurrently_and_heartbeat(
    redis_client: redis.Redis, key_prefix: str, tmp_path: Path
) -> None:
    running: set[str] = set()
    overlap = []

    def runner(ctx: WorkerContext, job: JobRecord) -> dict[str, Any]:
        running.add(job.id)
        overlap.append(len(running))
        time.sleep(0.5)
        running.discard(job.id)
        return {}

    d = _dispatcher(redis_client, key_prefix, tmp_path, runner)
    d.start()
    try:
        ids = [_submit(d.jobs) for _ in range(3)]
        jobs = [_wait(d.jobs, i) for i in ids]
        assert d.worker_id in d.jobs.workers_alive()
    finally:
        d.stop()
    assert all(j.status is JobStatus.succeeded for j in jobs)
    assert max(overlap) == 2  # max_jobs
    assert d.worker_id not in d.jobs.workers_alive()


def test_a_live_workers_long_job_is_never_taken_over(
    redis_client: redis.Redis, key_prefix: str, tmp_path: Path
) -> None:
    # Runs for 4 heartbeat TTLs beside a second dispatcher that looks for stale claims.
    runs: list[str] = []

    def runner(ctx: WorkerContext, job: JobRecord) -> dict[str, Any]:
        runs.append(job.id)
        time.sleep(4 * ctx.settings.heartbeat_ttl_s)
        return {}

    busy = _dispatcher(redis_client, key_prefix, tmp_path, runner)
    assert busy.stale_after_ms == 1500  # one heartbeat TTL
    idle = _dispatcher(redis_client, key_prefix, tmp_path, runner)
    busy.start()
    try:
        job_id = _submit(busy.jobs)
        while not runs:
            time.sleep(0.01)
        idle.start()
        job = _wait(busy.jobs, job_id)
    finally:
        busy.stop()
        idle.stop()
    assert job.status is JobStatus.succeeded
    assert runs == [job_id] and busy.jobs.get(job_id).attempts == 1
