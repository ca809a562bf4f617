"""Evaluation of every method on the same tasks: sane summaries, the CI, the fixed baseline."""

from __future__ import annotations

import dataclasses
import math

import pytest

from atnas.errors import ConfigError
from atnas.evaluate import Method, evaluate, summarise
from atnas.learner import InnerConfig
from atnas.metatrain import Member, MetaState
from atnas.tasks import TaskSampler
from tests.atnas.conftest import TINY_SEARCH, TINY_SPACE, synthetic_images, tiny_state

SEARCH = dataclasses.replace(
    TINY_SEARCH, population=2, generations=1, seed_top=1, folds=1, inner=InnerConfig(1, 0.2)
)


def _sampler() -> TaskSampler:
    return TaskSampler(synthetic_images(5, 5, size=8, seed=3), way=3, shot=2, query=2)


def _fixed_state() -> MetaState:
    state = tiny_state()
    conv = TINY_SPACE.conv4()
    cfg = dataclasses.replace(state.config, fixed_encode=conv)
    return MetaState(TINY_SPACE, cfg, state.supernet, [Member(conv)])


@pytest.mark.parametrize("method", list(Method))
def test_every_method_gives_a_sane_summary(method: Method) -> None:
    state = _fixed_state() if method is Method.FIXED else tiny_state()
    seen: list[tuple[int, float]] = []
    s = evaluate(
        state,
        _sampler(),
        2,
        method,
        SEARCH,
        seed=0,
        scratch_inner=InnerConfig(steps=2, lr=0.2),
        on_task=lambda i, acc: seen.append((i, acc)),
    )
    assert s.method == method.value and s.tasks == 2
    assert [i for i, _ in seen] == [0, 1]
    assert s.mean_acc == pytest.approx(sum(a for _, a in seen) / 2)
    assert 0.0 <= s.mean_acc <= 1.0 and math.isfinite(s.ci95) and s.ci95 >= 0.0
    assert 0.0 < s.median_seconds <= s.p95_seconds
    assert sum(n for _, n in s.top_encodes) <= 2 and s.top_encodes
    if method in (Method.ATNAS, Method.SCRATCH):
        assert s.mean_evaluations > 0
    else:
        assert s.mean_evaluations == 0
    if method is Method.META_BEST:
        assert s.top_encodes == [(state.best_encode().key(), 2)]
    if method is Method.FIXED:
        assert s.top_encodes == [(TINY_SPACE.conv4().key(), 2)]
    assert s.to_json()["tasks"] == 2


def test_same_seed_same_tasks_same_accuracy() -> None:
    a = evaluate(tiny_state(), _sampler(), 2, Method.META_BEST, SEARCH, seed=4)
    b = evaluate(tiny_state(), _sampler(), 2, Method.META_BEST, SEARCH, seed=4)
    assert a.mean_acc == b.mean_acc and a.ci95 == b.ci95


def test_fixed_without_a_fixed_encode_state_raises() -> None:
    with pytest.raises(ConfigError, match="fixed"):
        evaluate(tiny_state(), _sampler(), 1, Method.FIXED, SEARCH)


def test_summarise_by_hand() -> None:
    s = summarise(
        "m", [0.2, 0.4, 0.6, 0.8], [1.0, 2.0, 3.0, 10.0], [0, 2, 4, 6], ["a", "b", "a", "a"]
    )
    sd = math.sqrt(((0.3**2) * 2 + (0.1**2) * 2) / 3)
    assert s.mean_acc == pytest.approx(0.5)
    assert s.ci95 == pytest.approx(1.96 * sd / 2)
    assert s.median_seconds == pytest.approx(2.5)
    assert s.p95_seconds == pytest.approx(3.0 + 0.85 * 7.0)
    assert s.mean_evaluations == 3.0
    assert s.top_encodes == [("a", 3), ("b", 1)]
    assert math.isnan(summarise("m", [0.5], [1.0], [0], ["a"]).ci95)
