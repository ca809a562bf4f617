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
    ],
    ids=["succeeds", "typed-error", "bug"],
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
