"""The floors: nearest centroid on pixels and nearest prototype on features, by hand."""

from __future__ import annotations

import pytest
import torch

from atnas.fitness import support_splits
from atnas.floors import (
    feature_prototype_acc,
    floors_report,
    pixel_centroid_acc,
    split_floors,
)
from atnas.supernet import Supernet, features
from tests.atnas.conftest import TINY_SPACE, tiny_state


def test_pixel_centroid_by_hand() -> None:
    x = torch.tensor([[[[0.0, 0.0]]], [[[0.2, 0.0]]], [[[1.0, 1.0]]], [[[0.8, 1.0]]]])
    y = torch.tensor([0, 0, 1, 1])
    hx = torch.tensor([[[[0.1, 0.1]]], [[[0.9, 0.8]]], [[[0.7, 0.6]]]])
    assert pixel_centroid_acc(x, y, hx, torch.tensor([0, 1, 1]), 2) == 1.0
    assert pixel_centroid_acc(x, y, hx, torch.tensor([1, 1, 0]), 2) == pytest.approx(1 / 3)


def test_feature_prototype_is_nearest_mean_of_features() -> None:
    net, enc = Supernet(TINY_SPACE, seed=3), tiny_state().best_encode()
    gen = torch.Generator().manual_seed(0)
    x, hx = torch.rand(6, 1, 8, 8, generator=gen), torch.rand(9, 1, 8, 8, generator=gen)
    y, hy = torch.tensor([0, 1, 2, 0, 1, 2]), torch.tensor([0, 1, 2] * 3)
    w = net.weights(enc)
    with torch.no_grad():
        f, hf = features(x, enc, w), features(hx, enc, w)
    protos = torch.stack([f[y == c].mean(0) for c in range(3)])
    want = (torch.cdist(hf, protos).argmin(1) == hy).float().mean().item()
    assert feature_prototype_acc(net, enc, x, y, hx, hy, 3) == want
    splits = support_splits(x, y, 3, folds=2)
    fl = split_floors(net, enc, splits, 3)
    assert set(fl) == {"pixel_centroid", "feature_prototype"}
    assert all(0.0 <= v <= 1.0 for v in fl.values())


def test_floors_report_judges_by_query_when_there_is_one() -> None:
    support = {"pixel_centroid": 0.5, "feature_prototype": 0.6}
    r = floors_report(support, 0.7, None)
    assert r["model_beats_floors"] and r["support"]["model"] == 0.7
    q = {"pixel_centroid": 0.8, "feature_prototype": 0.4, "model": 0.7}
    assert not floors_report(support, 0.7, q)["model_beats_floors"]
