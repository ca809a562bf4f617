"""Job statistics read from a store filled directly, on real Redis (both kinds)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import redis

from service.jobs import JobRecord, JobStore
from service.keys import Keys
from service.schemas import ClusterInfo, JobKind, MetaTrainSpec, Progress, SearchSpec
from service.stats import job_stats

SEARCH = SearchSpec(supernet="0" * 32, dataset="1" * 32)
META = MetaTrainSpec(datasets=["2" * 32])


def _search(jobs: JobStore, tenant: str = "open") -> str:
    return jobs.create(JobKind.search, SEARCH, tenant=tenant)[0].id


def _meta(jobs: JobStore) -> str:
    return jobs.create(JobKind.meta_train, META)[0].id


def _rewrite(r: redis.Redis, keys: Keys, job_id: str, **times: datetime) -> None:
    """Moves a record's timestamps (what a long-running job would have left)."""
    rec = JobRecord.model_validate_json(r.get(keys.job(job_id)))  # type: ignore[arg-type]
    r.set(keys.job(job_id), rec.model_copy(update=times).model_dump_json())


def test_counts_by_kind_and_status(jobs: JobStore, keys: Keys, redis_client: redis.Redis) -> None:
    s1, s2, s3, _ = (_search(jobs, tenant=t) for t in ("acme", "acme", "globex", "open"))
    m1, _ = _meta(jobs), _meta(jobs)
    jobs.start(s1, "w1")
    jobs.start(s2, "w1")
    jobs.succeed(s2, {})
    jobs.request_cancel(s3)  # cancelled while queued
    jobs.start(m1, "w2")
    jobs.fail(m1, "boom")
    # Another prefix's jobs are not this service's.
    _search(JobStore(redis_client, Keys(keys.prefix + "-other")))

    st = job_stats(redis_client, keys)

    assert st.counts[("search", "queued")] == 1  # the open tenant's
    assert st.counts[("search", "running")] == 1  # s1
    assert st.counts[("search", "succeeded")] == 1
    assert st.counts[("search", "cancelled")] == 1
    assert st.counts[("meta_train", "queued")] == 1
    assert st.counts[("meta_train", "failed")] == 1
    assert st.counts[("meta_train", "running")] == 0
    assert sum(st.counts.values()) == 6 == st.created
    assert st.queued == 2
    assert len(st.durations[("search", "succeeded")]) == 1
    assert st.durations[("search", "cancelled")] == []  # never ran: no duration
    assert len(st.durations[("meta_train", "failed")]) == 1


def test_oldest_queued_age_and_an_empty_queue(
    jobs: JobStore, keys: Keys, redis_client: redis.Redis
) -> None:
    assert job_stats(redis_client, keys).oldest_queued_age_s is None
    old, new = _search(jobs), _meta(jobs)
    now = datetime.now(timezone.utc)
    _rewrite(redis_client, keys, old, created_at=now - timedelta(seconds=120))
    _rewrite(redis_client, keys, new, created_at=now - timedelta(seconds=5))
    age = job_stats(redis_client, keys).oldest_queued_age_s
    assert age is not None and 119 <= age <= 130  # the older of the two, whatever its kind
    jobs.start(old, "w")
    age = job_stats(redis_client, keys).oldest_queued_age_s
    assert age is not None and 4 <= age <= 15


def test_durations_of_the_newest_finished_jobs_only(
    jobs: JobStore, keys: Keys, redis_client: redis.Redis
) -> None:
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for seconds in (2.0, 40.0, 700.0):  # oldest first
        j = _search(jobs)
        jobs.start(j, "w")
        jobs.succeed(j, {})
        _rewrite(
            redis_client,
            keys,
            j,
            started_at=t0,
            finished_at=t0 + timedelta(seconds=seconds),
        )
    all_three = job_stats(redis_client, keys).durations[("search", "succeeded")]
    assert sorted(all_three) == [2.0, 40.0, 700.0]
    newest_two = job_stats(redis_client, keys, recent=2).durations[("search", "succeeded")]
    assert sorted(newest_two) == [40.0, 700.0]
    with pytest.raises(ValueError, match="recent"):
        job_stats(redis_client, keys, recent=0)


def test_rates_of_running_jobs_from_their_progress(
    jobs: JobStore, keys: Keys, redis_client: redis.Redis
) -> None:
    a, b, loading, m, m_loading = (
        _search(jobs),
        _search(jobs),
        _search(jobs),
        _meta(jobs),
        _meta(jobs),
    )
    for j in (a, b, loading, m, m_loading):
        jobs.start(j, "w")
    jobs.update_progress(a, Progress(phase="search", elapsed=10.0, extra={"evaluations": 30}))
    jobs.update_progress(b, Progress(phase="search", elapsed=4.0, extra={"evaluations": 2}))
    jobs.update_progress(loading, Progress(phase="loading", elapsed=3.0))
    jobs.update_progress(m, Progress(phase="meta_train", step=50, elapsed=25.0))
    jobs.update_progress(m_loading, Progress(phase="loading", step=0, elapsed=1.0))

    st = job_stats(redis_client, keys)

    assert st.evaluations_per_s == pytest.approx(3.0 + 0.5)
    assert st.iterations_per_s == pytest.approx(2.0)
    assert st.running_with_progress == {"search": 2, "meta_train": 1}
    jobs.succeed(a, {})  # a finished job no longer counts
    assert job_stats(redis_client, keys).evaluations_per_s == pytest.approx(0.5)


def test_live_workers_and_the_published_cluster(
    jobs: JobStore, keys: Keys, redis_client: redis.Redis
) -> None:
    st = job_stats(redis_client, keys)
    assert st.workers_alive == 0 and st.cluster is None
    jobs.heartbeat("w1", ttl_s=30)
    jobs.heartbeat("w2", ttl_s=30)
    jobs.heartbeat("gone", ttl_s=-1)  # its heartbeat expired a second ago
    jobs.publish_cluster(ClusterInfo(cpus=16, gpus=2, node_cpus=8, node_gpus=1), ttl_s=30)
    st = job_stats(redis_client, keys)
    assert st.workers_alive == 2
    assert st.cluster == ClusterInfo(cpus=16, gpus=2, node_cpus=8, node_gpus=1)
    assert redis_client.zcard(keys.workers()) == 3  # read only: nothing was pruned
