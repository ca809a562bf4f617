"""The benchmarks' shifted domains (benchmarks/domains.py): real data, drawn like Omniglot."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from atnas.tasks import Task, TaskSampler
from benchmarks.domains import digits_images, shifted


def test_digits_are_ten_classes_of_dark_ink_on_white_at_the_asked_size() -> None:
    digits = digits_images(28)
    assert digits.images.shape == (1797, 1, 28, 28)
    assert digits.images.dtype == np.uint8
    assert digits.num_classes == 10 and sum(len(ix) for ix in digits.class_index) == 1797
    assert digits.names[0] == "digit_0" and set(digits.groups) == {"digits"}
    # the left column of an 8x8 digit is blank: white once inverted; the middle holds dark ink
    assert digits.images[:, :, :, 0].mean() > 250
    assert digits.images[:, :, 10:18, 10:18].mean() < 200


def test_a_five_way_task_draws_from_the_digits() -> None:
    task = TaskSampler(digits_images(28), 5, 1, 15).sample(np.random.default_rng(0))
    assert task.support_x.shape == (5, 1, 28, 28) and task.query_x.shape == (75, 1, 28, 28)
    assert float(task.support_x.min()) >= 0.0 and float(task.support_x.max()) <= 1.0


def _task() -> Task:
    x = torch.rand(4, 1, 28, 28)
    return Task(x, torch.arange(4), x.clone(), torch.arange(4), ["a", "b", "c", "d"])


def test_shifts_change_support_and_query_alike() -> None:
    task, gen = _task(), torch.Generator().manual_seed(0)
    inv = shifted(task, "inverted", gen)
    assert torch.allclose(inv.support_x, 1.0 - task.support_x)
    assert torch.equal(inv.support_x, inv.query_x)
    assert shifted(task, "px56", gen).query_x.shape[-1] == 56
    assert shifted(task, None, gen) is task
    with pytest.raises(ValueError, match="unknown domain shift"):
        shifted(task, "sepia", gen)
