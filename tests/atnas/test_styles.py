"""Task styles (atnas.styles) and their use in meta-training (MetaTrainConfig.task_styles)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from atnas.errors import ConfigError
from atnas.metatrain import MetaTrainConfig, MetaTrainer
from atnas.styles import LOWRES_SIDES, Style, apply_style, draw_style, restyle
from atnas.tasks import Task
from tests.atnas.test_metatrain import CFG
from tests.atnas.test_metatrain import _trainer as metatrain_trainer


def _strokes(b: int = 6, size: int = 28) -> torch.Tensor:
    """White images with one dark bar each, at a different place."""
    x = torch.ones(b, 1, size, size)
    for i in range(b):
        x[i, 0, 4 + 3 * i : 6 + 3 * i, 5:23] = 0.0
    return x


def _task() -> Task:
    x = _strokes()
    return Task(x[:3], torch.arange(3), x[3:], torch.arange(3), ["a", "b", "c"])


def test_draws_cover_the_family_and_stay_in_range() -> None:
    rng = np.random.default_rng(0)
    styles = [draw_style(rng) for _ in range(300)]
    kinds = {(s.side is not None, s.ink is not None) for s in styles}
    assert kinds == {(True, False), (False, True), (True, True)}
    sides = {s.side for s in styles if s.side is not None}
    assert min(sides) == LOWRES_SIDES[0] and max(sides) == LOWRES_SIDES[1]
    for s in styles:
        assert (s.ink is None) == (s.gamma is None)
        if s.ink is not None and s.gamma is not None:
            assert 0.4 <= s.ink <= 1.0 and 0.5 <= s.gamma <= 2.0


def test_lowres_blurs_and_keeps_shape_and_range() -> None:
    x = _strokes()
    y = apply_style(x, Style(side=7))
    assert y.shape == x.shape and float(y.min()) >= 0 and float(y.max()) <= 1
    # the same amount of ink, spread: fewer sharp edges (lower total variation)
    tv = lambda t: float((t[..., 1:, :] - t[..., :-1, :]).abs().sum())  # noqa: E731
    assert tv(y) < 0.8 * tv(x)
    assert abs(float((1 - y).sum()) - float((1 - x).sum())) < 0.05 * float((1 - x).sum())
    # a side at least the image's leaves it unchanged
    assert torch.equal(apply_style(x, Style(side=28)), x)


def test_ink_by_hand() -> None:
    x = torch.tensor([[[[0.0, 0.5, 1.0]]]])
    y = apply_style(x, Style(ink=0.5, gamma=2.0))
    assert torch.allclose(y, torch.tensor([[[[0.5, 1 - 0.5 * 0.25, 1.0]]]]))


def test_restyle_applies_one_style_to_support_and_query_alike() -> None:
    task = _task()
    out, style = restyle(task, np.random.default_rng(3))
    assert style == draw_style(np.random.default_rng(3))
    assert torch.equal(out.support_x, apply_style(task.support_x, style))
    assert torch.equal(out.query_x, apply_style(task.query_x, style))
    assert torch.equal(out.support_y, task.support_y) and out.classes == task.classes
    assert not torch.equal(out.support_x, task.support_x)
    again, _ = restyle(task, np.random.default_rng(3))
    assert torch.equal(again.query_x, out.query_x)  # deterministic for the generator


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_config_refuses_a_share_outside_0_1(bad: float) -> None:
    with pytest.raises(ConfigError, match="task_styles"):
        MetaTrainConfig(task_styles=bad)


def _trainer(task_styles: float) -> MetaTrainer:
    """test_metatrain's small trainer, with ``task_styles`` set."""
    return metatrain_trainer(dataclasses.replace(CFG, task_styles=task_styles))


def _params(t: MetaTrainer) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in t.state.supernet.parameters()])


def test_meta_training_trains_on_styled_tasks() -> None:
    """With task_styles=1 every meta-training task is restyled from its slot's generator: the
    same seed gives the same supernet, and a different one from the run without styles."""
    a, b, plain = _trainer(1.0), _trainer(1.0), _trainer(0.0)
    assert torch.equal(_params(a), _params(plain))  # same initial weights
    for t in (a, b, plain):
        t.meta_step()
    assert torch.equal(_params(a), _params(b))
    assert not torch.equal(_params(a), _params(plain))


def test_task_styles_round_trips_and_old_configs_load_without_it() -> None:
    cfg = MetaTrainConfig(task_styles=0.5)
    assert MetaTrainConfig.from_json(cfg.to_json()) == cfg
    old = MetaTrainConfig().to_json()
    del old["task_styles"]  # a checkpoint saved before the field existed
    assert MetaTrainConfig.from_json(old).task_styles == 0.0
