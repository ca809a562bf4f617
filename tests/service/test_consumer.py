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
