"""Evaluator actors and the supernet holder, on the session's real local Ray cluster."""

from __future__ import annotations

import numpy as np
import pytest
import ray
import torch

from atnas.evolution import random_encode
from atnas.fitness import LocalEvaluator, support_splits
from atnas.learner import InnerConfig
from atnas.metatrain import Member, MetaState, MetaTrainConfig
from atnas.space import SearchSpace
from atnas.supernet import Supernet
from workers.evaluators import EvaluatorPool
from workers.holder import SupernetHolder, supernet_from_blob, to_blob


@pytest.fixture
def state() -> MetaState:
    space = SearchSpace(widths=(8, 16))
    rng = np.random.default_rng(0)
    pop = [Member(random_encode(space, rng), 0.5) for _ in range(4)]
    return MetaState(space, MetaTrainConfig(iterations=1), Supernet(space, seed=3), pop)


def _task(way: int = 3, shot: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(way * shot, 1, 28, 28, generator=gen)
    y = torch.arange(way).repeat_interleave(shot)
    return x, y


def test_blob_round_trip_keeps_weights(state: MetaState) -> None:
    net = supernet_from_blob(to_blob(state), torch.device("cpu"))
    for (k, a), (_, b) in zip(
        state.supernet.state_dict().items(), net.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), k


def test_pool_scores_like_the_local_evaluator(ray_address: str, state: MetaState, tmp_path) -> None:
    path = tmp_path / "supernet.pt"
    state.save(path)
    holder = SupernetHolder.remote()
    ref1 = ray.get(holder.get.remote("s1", str(path)))[0]
    ref2 = ray.get(holder.get.remote("s1", str(path)))[0]
    assert ref1 == ref2  # loaded and put once, shared by reference
    x, y = _task()
    splits = support_splits(x, y, 3, folds=2)
    inner = InnerConfig(steps=2, lr=0.1)
    encodes = [m.encode for m in state.population] + [state.space.conv4()]
    local = LocalEvaluator(state.supernet, splits, 3, inner)(encodes)
    pool = EvaluatorPool(2)
    try:
        remote = pool.evaluator("s1", ref1, splits, 3, inner)(encodes)
        one = pool.evaluator("s1", ref1, splits, 3, inner, actors=1)(encodes)
    finally:
        pool.shutdown()
        ray.kill(holder)
    assert [f.acc for f in remote] == pytest.approx([f.acc for f in local])
    assert [f.loss for f in remote] == pytest.approx([f.loss for f in local], rel=1e-5)
    assert [f.loss for f in one] == pytest.approx([f.loss for f in remote], rel=1e-6)
