"""A search job with cost bounds, run by the worker code on real Redis (both) and real Ray;
the driver's supernet cache under concurrent searches."""

from __future__ import annotations

import copy
import io
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import ray
import redis
import torch

from atnas.cost import arch_cost
from atnas.limits import cheapest
from atnas.metatrain import MetaState
from atnas.supernet import Supernet
from service.jobs import JobRecord, JobStore
from service.keys import Keys
from service.schemas import (
    JobKind,
    JobStatus,
    MetaTrainSpec,
    Progress,
    SearchConstraints,
    SearchSpec,
)
from tests.atnas.conftest import tiny_state
from tests.conftest import Zips, worker_context
from workers import search_job
from workers.context import WorkerContext
from workers.dispatcher import Dispatcher
from workers.holder import Blob, supernet_from_blob, to_blob
from workers.meta_train_job import cost_floor
from workers.search_job import SUPERNET_ARTIFACT, run_search

WAY = 3


class RecordingJobStore(JobStore):
    """The real job store, also keeping every progress it writes (what a poller could see)."""

    def __init__(self, r: redis.Redis, keys: Keys) -> None:
        super().__init__(r, keys)
        self.seen: list[Progress] = []

    def update_progress(self, job_id: str, progress: Progress) -> JobRecord:
        self.seen.append(progress)
        return super().update_progress(job_id, progress)


@pytest.fixture
def ctx(
    ray_address: str, redis_client: redis.Redis, key_prefix: str, tmp_path: Path
) -> Iterator[WorkerContext]:
    context: WorkerContext = worker_context(redis_client, key_prefix, tmp_path, RecordingJobStore)
    yield context
    context.shutdown()


@pytest.fixture
def state() -> MetaState:
    return tiny_state()  # 3 layers, widths 8 and 16, 8-pixel images


@pytest.fixture
def supernet(ctx: WorkerContext, state: MetaState, tmp_path: Path) -> str:
    """A succeeded meta_train job holding ``state`` as its supernet.pt, as a worker leaves it."""
    job, _ = ctx.jobs.create(JobKind.meta_train, MetaTrainSpec(datasets=["x"]))
    state.save(tmp_path / "supernet.pt")
    ctx.artifacts.put_file(job.id, SUPERNET_ARTIFACT, tmp_path / "supernet.pt")
    ctx.jobs.start(job.id, "w")
    ctx.jobs.succeed(job.id, {"cost_floor": cost_floor(state)})
    return job.id


@pytest.fixture
def task(ctx: WorkerContext, zips: type[Zips]) -> str:
    classes = {f"c{k}": 3 for k in range(WAY)}
    data = zips.task(classes, {name: 2 for name in classes})
    return ctx.datasets.create_from_upload(io.BytesIO(data), "task.zip", 10**6).id


def _start(ctx: WorkerContext, supernet: str, task: str, **bounds: Any) -> JobRecord:
    spec = SearchSpec(
        supernet=supernet,
        dataset=task,
        population=2,
        generations=1,
        budget_seconds=60,
        constraints=SearchConstraints(**bounds) if bounds else None,
    )
    job, _ = ctx.jobs.create(JobKind.search, spec)
    return ctx.jobs.start(job.id, "w")


def test_a_bounded_search_returns_a_net_and_a_front_within_the_bound(
    ctx: WorkerContext, state: MetaState, supernet: str, task: str
) -> None:
    # A binding bound: below the dearest member of the meta-population, above the cheapest net.
    size = state.config.image_size
    costs = [arch_cost(state.space, m.encode, size, WAY).flops for m in state.population]
    limit = int(np.median(costs))
    assert cheapest(state.space, size, WAY).macs <= limit < max(costs)
    job = _start(ctx, supernet, task, max_macs=limit)

    result = run_search(ctx, job)

    assert result["macs"] <= limit
    assert result["params"] > 0 and result["latency_ms"] > 0
    assert {"pixel_centroid", "feature_prototype", "model"} <= set(result["floors"]["support"])
    assert isinstance(result["floors"]["model_beats_floors"], bool)
    pixels_won = (result["floors"]["check"] or {}).get("use_pixels", False)
    assert result["model"] == ("pixel_centroid" if pixels_won else "subnet")
    assert result["pixel_expert"] is None  # off by default: no pixel expert joined the net
    assert "front.json" in result["artifacts"]
    assert {"model.ts", "model.onnx", "README.md"} <= set(result["artifacts"])
    card = ctx.artifacts.path(job.id, "README.md").read_text()
    assert f"- Job: `{job.id}`" in card and f"- Supernet (meta_train job): `{supernet}`" in card
    assert f"- Dataset: `{task}` (task.zip)" in card
    front = json.loads(ctx.artifacts.path(job.id, "front.json").read_text())
    points = front["front"] if isinstance(front, dict) else front
    assert points and all(p["macs"] <= limit for p in points)
    assert [p["macs"] for p in points] == sorted(p["macs"] for p in points)  # cheapest first
    assert result["front"] == points
    metrics = json.loads(ctx.artifacts.path(job.id, "metrics.json").read_text())
    assert metrics["cost"]["macs"] == result["macs"]
    assert metrics["limits"]["max_macs"] == limit
    assert result["warnings"] == metrics["warnings"] == []  # a searching supernet: no warning
    # The result's fitness is the number the progress showed for the best of the last generation.
    seen = ctx.jobs.seen  # type: ignore[attr-defined]
    last_search = [p for p in seen if p.phase == "search" and p.best_fitness is not None][-1]
    assert result["fitness"] == last_search.best_fitness
    final = ctx.jobs.get(job.id).progress
    assert final is not None and final.best_fitness == result["fitness"]


@pytest.mark.parametrize(
    ("bounds", "fragment"),
    [
        ({"max_macs": 1}, "max_macs 1 cannot be met"),
        ({"max_latency_ms": 1e-6}, "the fastest net measured took"),
    ],
    ids=["macs", "latency"],
)
def test_a_bound_no_net_meets_fails_the_job_with_one_line(
    ctx: WorkerContext,
    redis_client: redis.Redis,
    supernet: str,
    task: str,
    bounds: dict[str, Any],
    fragment: str,
) -> None:
    # MACs: a supernet without a cost floor cannot be checked at submission; latency never can.
    dispatcher = Dispatcher(ctx.settings, redis_client, max_jobs=1)
    job = _start(ctx, supernet, task, **bounds)
    try:
        dispatcher.run_job(job)
    finally:
        dispatcher.ctx.shutdown()
    failed = ctx.jobs.get(job.id)
    assert failed.status is JobStatus.failed and failed.error is not None
    assert fragment in failed.error and "\n" not in failed.error
    assert "internal error" not in failed.error


def test_searches_that_start_at_once_build_their_supernet_once(
    ray_address: str, state: MetaState, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = []

    def slow_build(blob: Blob, device: torch.device) -> Supernet:
        built.append(device)
        time.sleep(0.2)  # long enough for every thread to ask meanwhile
        return supernet_from_blob(blob, device)

    monkeypatch.setattr(search_job, "supernet_from_blob", slow_build)
    ref = ray.put(to_blob(state))
    supernet_id = f"s-{uuid.uuid4().hex}"
    start = threading.Barrier(4)
    got: list[MetaState] = []

    def ask() -> None:
        start.wait()
        got.append(search_job._state_from_blob(supernet_id, ref))

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(built) == 1 and len(got) == 4 and all(s is got[0] for s in got)


def test_a_focused_supernet_keeps_its_focus_through_the_object_store(
    ray_address: str, state: MetaState
) -> None:
    focused = copy.copy(state)
    focused.focus = state.population[-1].encode  # not the fittest: the focus must lead anyway
    ref = ray.put(to_blob(focused))
    view = search_job._state_from_blob(f"s-{uuid.uuid4().hex}", ref)
    assert view.focus == focused.focus and view.best_encode() == focused.focus
    unfocused = search_job._state_from_blob(f"s-{uuid.uuid4().hex}", ray.put(to_blob(state)))
    assert unfocused.focus is None
