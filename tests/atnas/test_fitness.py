"""Support-only fitness: hold-out splits, augmented views for 1-shot, the scalar value."""

from __future__ import annotations

import pytest
import torch

from atnas.errors import DatasetError
from atnas.fitness import (
    LOSS_WEIGHT,
    Fitness,
    LocalEvaluator,
    adapt_encode,
    split_fitness,
    support_splits,
)
from atnas.learner import InnerConfig, score
from atnas.space import Encode, SearchSpace
from atnas.supernet import Supernet

SPACE = SearchSpace(num_layers=3, widths=(8, 16))
ENC = Encode.of(("conv3x3", 8), ("conv3x3", 16), ("identity", 16))
INNER = InnerConfig(steps=2, lr=0.2)


def _support(way: int, shot: int) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.arange(way * shot, dtype=torch.float32).view(-1, 1, 1, 1).expand(-1, 1, 6, 6) / 100
    return x.contiguous(), torch.arange(way).repeat_interleave(shot)


def test_fitness_value_is_accuracy_minus_a_small_loss_term() -> None:
    assert Fitness(0.6, 2.0).value == pytest.approx(0.6 - LOSS_WEIGHT * 2.0)
    assert Fitness(0.6, 0.1).value > Fitness(0.6, 1.0).value  # loss breaks ties
    assert Fitness(0.8, 5.0).value > Fitness(0.6, 0.0).value  # but accuracy dominates


@pytest.mark.parametrize(("shot", "folds", "n_splits"), [(3, 2, 2), (2, 5, 2), (5, 1, 1)])
def test_k_shot_splits_hold_out_one_image_per_class(shot: int, folds: int, n_splits: int) -> None:
    x, y = _support(4, shot)
    splits = support_splits(x, y, 4, folds=folds)
    assert len(splits) == n_splits
    held_ids = []
    for s in splits:
        assert sorted(s.hy.tolist()) == [0, 1, 2, 3]
        assert len(s.y) == 4 * (shot - 1)
        train = {round(v * 100) for v in s.x[:, 0, 0, 0].tolist()}
        held = {round(v * 100) for v in s.hx[:, 0, 0, 0].tolist()}
        assert not train & held and len(train | held) == 4 * shot
        # labels travel with their images
        for xs, ys in ((s.x, s.y), (s.hx, s.hy)):
            ids = [round(v * 100) for v in xs[:, 0, 0, 0].tolist()]
            assert [i // shot for i in ids] == ys.tolist()
        held_ids.append(held)
    assert len({frozenset(h) for h in held_ids}) == len(held_ids)  # folds hold out different images


def test_one_shot_uses_deterministic_augmented_views() -> None:
    x = torch.rand(3, 1, 10, 10, generator=torch.Generator().manual_seed(0))
    y = torch.arange(3)
    a = support_splits(x, y, 3, views=3, seed=1)
    b = support_splits(x, y, 3, views=3, seed=1)
    assert len(a) == 3
    for s, t in zip(a, b, strict=True):
        assert torch.equal(s.x, x) and torch.equal(s.y, y) and torch.equal(s.hy, y)
        assert torch.equal(s.hx, t.hx) and not torch.equal(s.hx, x)
    assert not torch.equal(a[0].hx, a[1].hx)  # each view is a different warp


def test_class_without_support_image_is_an_error() -> None:
    with pytest.raises(DatasetError, match="at least one support image"):
        support_splits(torch.rand(4, 1, 6, 6), torch.tensor([0, 0, 1, 1]), n_way=3)


def test_split_fitness_is_the_mean_over_splits_and_evaluator_agrees() -> None:
    net = Supernet(SPACE, seed=0)
    x = torch.rand(9, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    y = torch.arange(3).repeat_interleave(3)
    splits = support_splits(x, y, 3, folds=2)
    accs, losses = [], []
    for s in splits:
        w = adapt_encode(net, ENC, s.x, s.y, 3, INNER)
        acc, loss = score(ENC, w, s.hx, s.hy)
        accs.append(acc)
        losses.append(loss)
    f = split_fitness(net, ENC, splits, 3, INNER)
    assert f.acc == pytest.approx(sum(accs) / 2) and f.loss == pytest.approx(sum(losses) / 2)
    other = Encode.of(("conv5x5", 16), ("sepconv3x3", 8), ("conv3x3", 8))
    assert LocalEvaluator(net, splits, 3, INNER)([ENC, other]) == [
        f,
        split_fitness(net, other, splits, 3, INNER),
    ]


def test_adapt_encode_returns_detached_weights_and_leaves_supernet_alone() -> None:
    net = Supernet(SPACE, seed=0)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x, y = torch.rand(6, 1, 8, 8), torch.arange(3).repeat(2)
    w = adapt_encode(net, ENC, x, y, 3, INNER)
    assert all(not v.requires_grad for v in w.values())
    assert w["head.w"].shape == (3, 16) and w["head.w"].abs().sum() > 0
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k])
    assert all(p.grad is None for p in net.parameters())
