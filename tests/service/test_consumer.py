from __future__ import annotations

import time

from service.consumer import JobConsumer
from service.jobs import JobStore
from service.schemas import JobKind, JobStatus, SearchSpec

SPEC = SearchSpec(supernet="s", dataset="d")


def test_next_starts_the_job_and_done_acks(jobs: JobStore) -> None:
    job, _ = jobs.create(JobKind.search, SPEC)
    consumer = JobConsumer(jobs, "w1")
    a = consumer.next(block_ms=10)
    assert a is not None and a.job.id == job.id
    assert a.job.status is JobStatus.running and a.job.worker == "w1"
    jobs.succeed(job.id, {})
    consumer.done(a)
    assert jobs.queue.pending() == 0 and consumer.next(block_ms=10) is None


def test_cancelled_while_queued_is_skipped(jobs: JobStore) -> None:
    job, _ = jobs.create(JobKind.search, SPEC)
    jobs.request_cancel(job.id)
    assert JobConsumer(jobs, "w1").next(block_ms=10) is None
    assert jobs.queue.pending() == 0 and jobs.get(job.id).status is JobStatus.cancelled


def test_dead_workers_job_is_taken_over(jobs: JobStore) -> None:
    job, _ = jobs.create(JobKind.search, SPEC)
    dead = JobConsumer(jobs, "dead")
    jobs.heartbeat("dead", ttl_s=0.05)
    assert dead.next(block_ms=10) is not None
    time.sleep(0.1)  # its heartbeat expires, its claim goes idle
    live = JobConsumer(jobs, "live")
    jobs.heartbeat("live", ttl_s=30)
    taken = live.reclaim(min_idle_ms=50)
    assert [a.job.id for a in taken] == [job.id]
    assert taken[0].job.worker == "live" and taken[0].job.attempts == 2


def test_a_live_workers_job_is_left_alone(jobs: JobStore) -> None:
    jobs.create(JobKind.search, SPEC)
    busy = JobConsumer(jobs, "busy")
    jobs.heartbeat("busy", ttl_s=30)
    a = busy.next(block_ms=10)
    assert a is not None
    time.sleep(0.06)
    assert JobConsumer(jobs, "other").reclaim(min_idle_ms=50) == []
    busy.touch(a)
    assert JobConsumer(jobs, "other").reclaim(min_idle_ms=50) == []
    assert jobs.get(a.job.id).status is JobStatus.running


def test_a_job_delivered_twice_runs_once(jobs: JobStore) -> None:
    job, _ = jobs.create(JobKind.search, SPEC)
    jobs.queue.enqueue(job.id)  # the same id again, e.g. a client's retry that got through
    a = JobConsumer(jobs, "w1").next(block_ms=10)
    jobs.heartbeat("w1", ttl_s=30)
    assert a is not None and a.job.id == job.id
    assert JobConsumer(jobs, "w2").next(block_ms=10) is None  # the second delivery is dropped
    assert JobConsumer(jobs, "w1").next(block_ms=10) is None
    assert jobs.queue.pending() == 1  # only the running claim is left
    assert jobs.get(job.id).attempts == 1


def test_a_stale_second_delivery_never_restarts_a_job_its_own_worker_runs(jobs: JobStore) -> None:
    job, _ = jobs.create(JobKind.search, SPEC)
    w1 = JobConsumer(jobs, "w1")
    jobs.heartbeat("w1", ttl_s=30)
    a = w1.next(block_ms=10)
    assert a is not None
    jobs.queue.enqueue(job.id)
    jobs.queue.claim("w1", block_ms=10)  # delivered, then left pending (e.g. a crash between)
    for reclaimer in (JobConsumer(jobs, "w2"), w1):  # another live worker, then its own
        time.sleep(0.06)
        w1.touch(a)
        assert reclaimer.reclaim(min_idle_ms=50) == []
    assert jobs.get(job.id).status is JobStatus.running and jobs.get(job.id).attempts == 1


def _die_with_the_job(jobs: JobStore, worker: str) -> None:
    jobs.heartbeat(worker, ttl_s=0.05)
    consumer = JobConsumer(jobs, worker)
    taken = consumer.next(block_ms=10) or consumer.reclaim(min_idle_ms=50)
    assert taken
    time.sleep(0.1)  # its heartbeat expires, its claim goes idle


def test_a_job_whose_workers_keep_dying_fails_at_the_attempts_cap(jobs: JobStore) -> None:
    job, _ = jobs.create(JobKind.search, SPEC)
    for k in range(3):
        _die_with_the_job(jobs, f"dead{k}")
    assert jobs.get(job.id).attempts == 3
    live = JobConsumer(jobs, "live", max_attempts=3)
    jobs.heartbeat("live", ttl_s=30)
    assert live.reclaim(min_idle_ms=50) == []
    failed = jobs.get(job.id)
    assert failed.status is JobStatus.failed and failed.error is not None
    assert failed.error == (
        "the job's worker died 3 times (attempts cap ATNAS_MAX_ATTEMPTS=3); last worker dead2"
    )
    assert jobs.queue.pending() == 0


def test_a_dead_workers_job_that_was_cancelled_becomes_cancelled(jobs: JobStore) -> None:
    job, _ = jobs.create(JobKind.search, SPEC)
    _die_with_the_job(jobs, "dead")
    jobs.request_cancel(job.id)  # flagged for a worker that will never look
    live = JobConsumer(jobs, "live", max_attempts=3)
    jobs.heartbeat("live", ttl_s=30)
    assert live.reclaim(min_idle_ms=50) == []
    assert jobs.get(job.id).status is JobStatus.cancelled
    assert jobs.queue.pending() == 0
