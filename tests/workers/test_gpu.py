"""The GPU path, run for real where CUDA is present (marker ``gpu``; skipped elsewhere).

Checked on a lent GPU machine with ``benchmarks/gpu.py`` (docs/benchmarks.md); these tests
keep the path honest wherever a CUDA device is visible to the test session.
"""

from __future__ import annotations

import pytest
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
