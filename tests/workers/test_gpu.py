"""The GPU path, run for real where CUDA is present (marker ``gpu``; skipped elsewhere).

Checked on a lent GPU machine with ``benchmarks/gpu.py`` (docs/benchmarks.md); these tests
keep the path honest wherever a CUDA device is visible to the test session.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import redis
import torch

from atnas import pipeline
from tests.atnas.conftest import synthetic_images

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def test_meta_training_runs_on_cuda() -> None:
    state = pipeline.meta_train(
        synthetic_images(n_classes=12, size=16),
        "tiny",
        iterations=3,
        budget_seconds=None,
        way=2,
        image_size=16,
        device=torch.device("cuda"),
    )
    assert state.iteration == 3
    assert all(p.is_cuda for p in state.supernet.parameters())


def test_an_evaluator_actor_on_a_gpu_uses_cuda(ray_address: str) -> None:
    import ray

    from workers.evaluators import EvaluatorPool

    gpus = int(ray.cluster_resources().get("GPU", 0))  # type: ignore[no-untyped-call]
    if not gpus:
        pytest.skip("the Ray cluster of the tests has no GPU")
    pool = EvaluatorPool(1, gpus=gpus)
    try:
        assert ray.get(pool.actors[0].ping.remote()).startswith("cuda")
    finally:
        pool.shutdown()


@pytest.mark.timeout(300)  # a meta-train worker that cannot get its GPU would wait forever
def test_a_meta_train_job_and_a_search_job_run_on_the_gpu(
    ray_address: str, redis_client: redis.Redis, key_prefix: str, tmp_path: Path
) -> None:
    # The service's own path: Ray Train gives its worker the GPU (NCCL backend) while the
    # dispatcher's evaluator actors hold their share of it, and the search job's driver holds
    # the supernet in GPU memory.
    import ray

    from service.schemas import JobKind, MetaTrainSpec, SearchSpec
    from tests.conftest import Zips, worker_context
    from workers.meta_train_job import run_meta_train
    from workers.search_job import run_search

    if not ray.cluster_resources().get("GPU", 0):  # type: ignore[no-untyped-call]
        pytest.skip("the Ray cluster of the tests has no GPU")
    ctx = worker_context(redis_client, key_prefix, tmp_path)
    try:
        assert ray.get(ctx.pool.actors[0].ping.remote()).startswith("cuda")  # pool first
        data = Zips.classes({f"g{k % 2}/c{k:02d}": 8 for k in range(24)})
        classes = ctx.datasets.create_from_upload(io.BytesIO(data), "classes.zip", 10**7).id
        spec = MetaTrainSpec(
            datasets=[classes], way=2, preset="tiny", image_size=16, iterations=6, workers=1
        )
        meta, _ = ctx.jobs.create(JobKind.meta_train, spec)
        ctx.jobs.start(meta.id, "w")
        result = run_meta_train(ctx, ctx.jobs.get(meta.id))
        assert result["device"] == "cuda" and result["workers"] == 1
        assert result["iterations"] == 6
        ctx.jobs.succeed(meta.id, result)
        task_zip = Zips.task({"a": 3, "b": 3}, {"a": 2, "b": 2})
        task = ctx.datasets.create_from_upload(io.BytesIO(task_zip), "task.zip", 10**6).id
        search = SearchSpec(supernet=meta.id, dataset=task, population=2, generations=1)
        job, _ = ctx.jobs.create(JobKind.search, search)
        ctx.jobs.start(job.id, "w")
        found = run_search(ctx, ctx.jobs.get(job.id))
        assert found["device"] == "cuda"
        assert "model.ts" in found["artifacts"] and 0.0 <= found["query_acc"] <= 1.0
    finally:
        ctx.shutdown()
