"""Jobs that arrive twice, or all at once, run once each."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from service.schemas import JobStatus, SearchSpec
from tests.reliability.conftest import Service, meta_train_spec, wait_final, wait_for

pytestmark = pytest.mark.reliability


def test_a_job_delivered_twice_runs_once(service: Service) -> None:
    spec = SearchSpec(supernet=service.large, dataset=service.task, population=4, generations=1)
    job_id = service.submit(spec)
    service.jobs.queue.enqueue(job_id)  # the same job id a second time
    job = wait_final(service.jobs, job_id)
    assert job.status is JobStatus.succeeded, job.error
    assert job.attempts == 1  # started once
    # Both deliveries are settled: nothing waits, nothing stays claimed.
    wait_for("the queue to drain", lambda: service.jobs.queue.length() == 0, timeout=10)
    assert service.jobs.queue.pending() == 0
    assert service.dispatcher.running() == []


def test_several_meta_train_jobs_started_at_once_all_succeed(
    service: Service, figure: Callable[[str, float], None]
) -> None:
    # Tune's trainable registry is process-global: three Tuners at once used to break it. One
    # worker each, so that two of them start and run side by side on the 2 CPUs.
    started = time.monotonic()
    ids = [service.submit(meta_train_spec(service.classes, 3, workers=1)) for _ in range(3)]
    jobs = [wait_final(service.jobs, i, timeout=180) for i in ids]
    figure(
        "3 meta_train jobs of 1 worker submitted at once (2 CPUs): all done after",
        time.monotonic() - started,
    )
    assert [j.status for j in jobs] == [JobStatus.succeeded] * 3, [j.error for j in jobs]
    assert all(j.attempts == 1 for j in jobs)
    assert {a for j in jobs for a in (j.result or {}).get("artifacts", [])} == {
        "supernet.pt",
        "meta.json",
    }
