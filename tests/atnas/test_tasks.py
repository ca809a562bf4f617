"""Episodic task sampling (seeded), rotation classes, and augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from atnas.data import ImageSet
from atnas.errors import DatasetError
from atnas.tasks import TaskSampler, augment, to_float
from tests.atnas.conftest import synthetic_images


def test_same_seed_same_task_other_seed_differs() -> None:
    s = TaskSampler(synthetic_images(8, 6), way=3, shot=2, query=3)
    a = s.sample(np.random.default_rng(5))
    b = s.sample(np.random.default_rng(5))
    c = s.sample(np.random.default_rng(6))
    assert a.classes == b.classes
    assert torch.equal(a.support_x, b.support_x) and torch.equal(a.query_x, b.query_x)
    assert a.classes != c.classes or not torch.equal(a.support_x, c.support_x)


def test_task_shapes_labels_and_range() -> None:
    images = synthetic_images(8, 6, size=8)
    t = TaskSampler(images, way=4, shot=2, query=3).sample(np.random.default_rng(0))
    assert t.way == 4 and len(set(t.classes)) == 4
    assert t.support_x.shape == (8, 1, 8, 8) and t.query_x.shape == (12, 1, 8, 8)
    assert t.support_x.dtype == torch.float32
    assert t.support_y.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert t.query_y.tolist() == [k for k in range(4) for _ in range(3)]
    for x in (t.support_x, t.query_x):
        assert x.min() >= 0.0 and x.max() <= 1.0
    assert set(torch.unique(t.support_x).tolist()) == {0.0, 1.0}  # 0 and 255 map to 0 and 1


def test_support_and_query_images_of_a_class_are_distinct_draws() -> None:
    # every image unique: encode its row number in its pixels
    n, per = 4, 5
    imgs = np.zeros((n * per, 1, 4, 4), np.uint8)
    imgs[:, 0, 0, 0] = np.arange(n * per)
    s = ImageSet(
        [f"c{k}" for k in range(n)],
        ["g"] * n,
        imgs,
        [np.arange(k * per, (k + 1) * per) for k in range(n)],
    )
    t = TaskSampler(s, way=3, shot=2, query=3).sample(np.random.default_rng(1))
    rows_s = (t.support_x[:, 0, 0, 0] * 255).round().long().tolist()
    rows_q = (t.query_x[:, 0, 0, 0] * 255).round().long().tolist()
    assert not set(rows_s) & set(rows_q)
    for label, name in enumerate(t.classes):
        k = int(name[1:])
        for rows, ys in ((rows_s, t.support_y), (rows_q, t.query_y)):
            mine = [r for r, y in zip(rows, ys.tolist(), strict=True) if y == label]
            assert all(k * per <= r < (k + 1) * per for r in mine)


def test_query_shrinks_to_what_a_class_has() -> None:
    t = TaskSampler(synthetic_images(3, 3), way=3, shot=1, query=5).sample(np.random.default_rng(0))
    assert t.query_x.shape[0] == 3 * 2


def test_rotation_classes() -> None:
    imgs = np.zeros((4, 1, 5, 5), np.uint8)
    imgs[:, 0, 0, 1] = 255  # asymmetric mark near the top-left corner
    imgs[2:, 0, 4, 4] = 128  # second class: another mark
    s = ImageSet(["a", "b"], ["g", "g"], imgs, [np.arange(2), np.arange(2, 4)])
    sampler = TaskSampler(s, way=8, shot=1, query=1, rotations=True)
    assert sampler.num_classes == 8
    t = sampler.sample(np.random.default_rng(0))
    assert sorted(t.classes) == sorted(
        n + r for n in "ab" for r in ("", "@rot90", "@rot180", "@rot270")
    )
    for label, name in enumerate(t.classes):
        base, _, rot = name.partition("@rot")
        k = int(rot or 0) // 90
        expected = to_float(np.rot90(imgs[0 if base == "a" else 2], k=k, axes=(1, 2)).copy())
        assert torch.equal(t.support_x[label], expected), name
    with pytest.raises(DatasetError, match="rotations included"):
        TaskSampler(s, way=9, shot=1, query=1, rotations=True)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"way": 1, "shot": 1, "query": 1}, "way"),
        ({"way": 2, "shot": 0, "query": 1}, "shot"),
        ({"way": 2, "shot": 1, "query": 0}, "query"),
        ({"way": 7, "shot": 1, "query": 1}, "7 classes"),
        ({"way": 2, "shot": 6, "query": 1}, "at least 7"),
    ],
)
def test_sampler_rejects_impossible_tasks(kwargs: dict, fragment: str) -> None:
    with pytest.raises(DatasetError, match=fragment):
        TaskSampler(synthetic_images(6, 6), **kwargs)


def test_class_with_too_few_images_is_named() -> None:
    s = synthetic_images(4, 4)
    s.class_index[2] = s.class_index[2][:2]
    with pytest.raises(DatasetError, match=f"{s.names[2]!r} has 2 image"):
        TaskSampler(s, way=3, shot=2, query=1)


def test_task_to_device_keeps_everything() -> None:
    t = TaskSampler(synthetic_images(4, 4), 2, 1, 1).sample(np.random.default_rng(0))
    u = t.to(torch.device("cpu"))
    assert u.classes == t.classes and torch.equal(u.support_x, t.support_x)


def test_augment_is_deterministic_small_and_shape_preserving() -> None:
    x = to_float(synthetic_images(2, 3, size=12).images)
    a = augment(x, torch.Generator().manual_seed(0))
    b = augment(x, torch.Generator().manual_seed(0))
    c = augment(x, torch.Generator().manual_seed(1))
    assert a.shape == x.shape
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.min() >= 0.0 and a.max() <= 1.0
    assert not torch.allclose(a, x)
    assert torch.allclose(augment(x, torch.Generator().manual_seed(0), strength=0.0), x, atol=1e-5)
