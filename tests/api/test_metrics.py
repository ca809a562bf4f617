"""``GET /metrics`` over real HTTP: Prometheus text from the job store, open without a key, and
numbers that move while a real search runs through a real dispatcher on the session's Ray."""

from __future__ import annotations

import io
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
import redis
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from api.services import Services
from service.jobs import JobRecord
from service.schemas import ClusterInfo, JobKind, MetaTrainSpec, Progress, SearchSpec
from service.settings import Settings
from tests.api.conftest import LiveServer
from tests.conftest import Zips

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(http: httpx.Client, **headers: str) -> Samples:
    """Every sample of one scrape, by (sample name, sorted labels)."""
    resp = http.get("/metrics", headers=headers)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(resp.text)
        for s in family.samples
    }


def jobs(samples: Samples, kind: str, status: str) -> float:
    return samples[("atnas_jobs", (("kind", kind), ("status", status)))]


def durations(samples: Samples, kind: str, status: str, le: str = "+Inf") -> float:
    labels = (("kind", kind), ("le", le), ("status", status))
    return samples.get(("atnas_job_duration_seconds_bucket", labels), 0.0)


def test_an_empty_store_scrapes_to_zeros(server: LiveServer) -> None:
    s = scrape(server.http)
    assert all(
        jobs(s, k, st) == 0 for k in ("search", "meta_train") for st in ("queued", "running")
    )
    assert s[("atnas_queue_depth", ())] == 0
    assert s[("atnas_queue_oldest_age_seconds", ())] == 0
    assert s[("atnas_jobs_created_total", ())] == 0
    assert s[("atnas_workers_alive", ())] == 0
    assert not any(name == "atnas_cluster_resources" for name, _ in s)


def test_the_scrape_reflects_a_store_filled_directly(
    server: LiveServer, redis_client: redis.Redis
) -> None:
    store = server.services.jobs
    spec = SearchSpec(supernet="0" * 32, dataset="1" * 32)
    queued = store.create(JobKind.search, spec, tenant="acme-secret-tenant")[0]
    running = store.start(store.create(JobKind.search, spec)[0].id, "w")
    store.update_progress(
        running.id, Progress(phase="search", elapsed=5.0, extra={"evaluations": 20})
    )
    meta = store.start(store.create(JobKind.meta_train, MetaTrainSpec(datasets=["x"]))[0].id, "w")
    store.update_progress(meta.id, Progress(phase="meta_train", step=30, elapsed=10.0))
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for seconds in (3.0, 100.0):
        done = store.start(store.create(JobKind.search, spec)[0].id, "w")
        store.succeed(done.id, {})
        key = f"{server.services.settings.key_prefix}:job:{done.id}"
        rec = JobRecord.model_validate_json(redis_client.get(key))  # type: ignore[arg-type]
        times = {"started_at": t0, "finished_at": t0 + timedelta(seconds=seconds)}
        redis_client.set(key, rec.model_copy(update=times).model_dump_json())
    store.heartbeat("worker-host-secret", ttl_s=30)
    store.publish_cluster(ClusterInfo(cpus=8, gpus=1, node_cpus=8, node_gpus=1), ttl_s=30)

    s = scrape(server.http)

    assert jobs(s, "search", "queued") == 1
    assert jobs(s, "search", "running") == 1
    assert jobs(s, "search", "succeeded") == 2
    assert jobs(s, "meta_train", "running") == 1
    assert s[("atnas_jobs_created_total", ())] == 5
    assert s[("atnas_queue_depth", ())] == 1
    assert 0 <= s[("atnas_queue_oldest_age_seconds", ())] < 30
    assert durations(s, "search", "succeeded", "1.0") == 0
    assert durations(s, "search", "succeeded", "5.0") == 1
    assert durations(s, "search", "succeeded", "60.0") == 1
    assert durations(s, "search", "succeeded", "120.0") == 2
    assert durations(s, "search", "succeeded") == 2
    labels = (("kind", "search"), ("status", "succeeded"))
    assert s[("atnas_job_duration_seconds_gsum", labels)] == 103.0
    assert s[("atnas_job_duration_seconds_gcount", labels)] == 2
    assert s[("atnas_search_evaluations_per_second", ())] == pytest.approx(4.0)
    assert s[("atnas_meta_train_iterations_per_second", ())] == pytest.approx(3.0)
    assert s[("atnas_workers_alive", ())] == 1
    assert s[("atnas_cluster_resources", (("resource", "cpu"),))] == 8
    assert s[("atnas_cluster_resources", (("resource", "gpu"),))] == 1
    text = server.http.get("/metrics").text
    for secret in (queued.id, running.id, "acme-secret-tenant", "worker-host-secret"):
        assert secret not in text  # numbers only: no ids, tenants or hosts


def test_metrics_need_no_key_where_v1_does(
    server: LiveServer,
    _uvicorn: tuple[FastAPI, str],
    settings: Settings,
    redis_client: redis.Redis,
) -> None:
    keyed = settings.model_copy(update={"api_keys": "acme:acme-key-0123456789"})
    _uvicorn[0].state.services = Services.build(keyed, redis_client)
    assert server.http.get("/v1/jobs").status_code == 401
    assert scrape(server.http)[("atnas_queue_depth", ())] == 0
    # OpenMetrics for scrapers that ask for it.
    resp = server.http.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/openmetrics-text")
    assert resp.text.rstrip().endswith("# EOF")


def test_the_numbers_move_while_a_search_runs(
    server: LiveServer,
    settings: Settings,
    redis_client: redis.Redis,
    ray_address: str,
    zips: type[Zips],
    tmp_path: Path,
) -> None:
    """queued -> running -> succeeded, seen by scraping while a real dispatcher runs the job."""
    from tests.atnas.conftest import tiny_state
    from workers.dispatcher import Dispatcher
    from workers.meta_train_job import cost_floor
    from workers.search_job import SUPERNET_ARTIFACT

    services = server.services
    state = tiny_state()  # 3 layers, widths 8 and 16, 8-pixel images: a search takes seconds
    mt = services.jobs.create(JobKind.meta_train, MetaTrainSpec(datasets=["x"]))[0]
    state.save(tmp_path / "supernet.pt")
    services.artifacts.put_file(mt.id, SUPERNET_ARTIFACT, tmp_path / "supernet.pt")
    services.jobs.start(mt.id, "fixture")
    services.jobs.succeed(mt.id, {"cost_floor": cost_floor(state)})
    classes = {f"c{k}": 3 for k in range(3)}
    data = zips.task(classes, {name: 2 for name in classes})
    task = services.datasets.create_from_upload(io.BytesIO(data), "task.zip", 10**6).id

    before = scrape(server.http)
    resp = server.http.post(
        "/v1/jobs",
        json={
            "kind": "search",
            "spec": {"supernet": mt.id, "dataset": task, "population": 2, "generations": 1},
        },
    )
    assert resp.status_code == 202, resp.text
    job_id = resp.json()["id"]
    queued = scrape(server.http)
    assert jobs(queued, "search", "queued") == jobs(before, "search", "queued") + 1 == 1
    assert queued[("atnas_queue_depth", ())] == 1
    assert queued[("atnas_jobs_created_total", ())] == before[("atnas_jobs_created_total", ())] + 1
    assert queued[("atnas_workers_alive", ())] == 0

    dispatcher = Dispatcher(settings.model_copy(update={"evaluators": 1}), redis_client, 1)
    dispatcher.start()
    seen_running = None
    try:
        # a hang guard, not a timing target: ~17 s alone, >120 s once beside another Ray cluster
        deadline = time.monotonic() + 300
        while True:
            s = scrape(server.http)
            if jobs(s, "search", "running") == 1 and seen_running is None:
                seen_running = s
            if jobs(s, "search", "succeeded") == 1 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    finally:
        dispatcher.stop(timeout=2.0)
        dispatcher.ctx.shutdown()
    assert services.jobs.get(job_id).status.value == "succeeded", services.jobs.get(job_id).error
    assert seen_running is not None, "never scraped the job while it ran"
    assert jobs(seen_running, "search", "queued") == 0
    assert seen_running[("atnas_queue_depth", ())] == 0
    assert seen_running[("atnas_workers_alive", ())] == 1
    assert seen_running[("atnas_cluster_resources", (("resource", "cpu"),))] >= 1
    after = s
    assert jobs(after, "search", "running") == 0
    assert jobs(after, "search", "succeeded") == 1
    assert durations(after, "search", "succeeded") == durations(before, "search", "succeeded") + 1
    run_s = after[
        ("atnas_job_duration_seconds_gsum", (("kind", "search"), ("status", "succeeded")))
    ]
    assert 0 < run_s < 300
