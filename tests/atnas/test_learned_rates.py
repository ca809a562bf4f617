"""Meta-learned per-layer inner rates (``InnerConfig.learn_rates``): their gradient, their use
at adaptation time, and supernets saved before they existed."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from atnas import pipeline
from atnas.fitness import adapt_encode
from atnas.learner import InnerConfig, adapt, descend, detached
from atnas.meta import MetaAlgorithm, accumulate_meta_grad
from atnas.metatrain import MetaState
from atnas.space import Encode, SearchSpace
from atnas.supernet import Supernet, init_head, logits
from atnas.tasks import Task
from tests.atnas.conftest import synthetic_images, tiny_meta_task

SPACE = SearchSpace(num_layers=2, ops=("conv3x3",), widths=(4,))
ENC = Encode.of(("conv3x3", 4), ("conv3x3", 4))


def _net(log_rates: list[float] | None = None, dtype: torch.dtype = torch.float32) -> Supernet:
    net = Supernet(SPACE, seed=3).to(dtype)
    if log_rates is not None:
        with torch.no_grad():
            net.log_rates.copy_(torch.tensor(log_rates))
    return net


def _query_loss(net: Supernet, task: Task, inner: InnerConfig) -> float:
    """The query loss after adapting with the net's rates, as meta-training computes it."""
    views = {k: v.detach() for k, v in net.weights(ENC).items()}
    head = init_head(ENC, views, task.support_x, task.support_y, task.way, inner.head)
    rates = {k: v.detach() for k, v in net.rates().items()}
    fast = adapt(
        ENC, detached({**views, **head}), task.support_x, task.support_y, inner, rates=rates
    )
    with torch.no_grad():
        return float(F.cross_entropy(logits(task.query_x, ENC, fast), task.query_y))


def test_a_net_without_learned_rates_adapts_exactly_as_before() -> None:
    net = _net()
    assert net.fixed_rates() is None  # the plain path, bit for bit
    inner = InnerConfig(steps=3, lr=0.2)
    task = tiny_meta_task()
    start = detached(
        {
            **net.weights(ENC),
            **init_head(ENC, net.weights(ENC), task.support_x, task.support_y, 3, "zero"),
        }
    )
    plain = adapt(ENC, start, task.support_x, task.support_y, inner)
    ones = adapt(
        ENC, start, task.support_x, task.support_y, inner, rates={"l0": 1.0, "l1": 1.0, "head": 1.0}
    )
    assert all(torch.equal(plain[k], ones[k]) for k in plain)


def test_rates_scale_each_layers_steps() -> None:
    # One step: a layer's change is proportional to its rate; a zero-rate layer does not move.
    net = _net()
    task = tiny_meta_task()
    inner = InnerConfig(steps=1, lr=0.2)
    views = net.weights(ENC)
    start = detached({**views, **init_head(ENC, views, task.support_x, task.support_y, 3, "zero")})
    base = adapt(ENC, start, task.support_x, task.support_y, inner)
    scaled = adapt(
        ENC, start, task.support_x, task.support_y, inner, rates={"l0": 0.0, "l1": 3.0, "head": 1.0}
    )
    for k in start:
        moved, moved_base = scaled[k] - start[k], base[k] - start[k]
        want = {"l0": 0.0, "l1": 3.0, "head": 1.0}[k.split(".")[0]] * moved_base
        assert torch.allclose(moved, want, atol=1e-6), k


def test_the_first_order_rate_gradient_is_exact_for_one_step() -> None:
    # With one inner step the first-order meta-gradient of a rate is the true derivative of
    # the query loss: compare it with central finite differences in log-rate.
    # In float64: in float32 a loss difference this small is rounding (a component of ~3e-4
    # came out as 2.4e-4 under one thread's summation order).
    inner = InnerConfig(steps=1, lr=0.5, head="proto", learn_rates=True)
    logs = [0.2, -0.3, 0.1]
    task = tiny_meta_task(1)
    task = replace(task, support_x=task.support_x.double(), query_x=task.query_x.double())
    net = _net(logs, torch.float64)
    accumulate_meta_grad(net, ENC, task, inner, MetaAlgorithm.FOMAML, scale=1.0)
    assert net.log_rates.grad is not None
    eps = 1e-4
    for i in range(3):
        up, down = list(logs), list(logs)
        up[i] += eps
        down[i] -= eps
        loss_up = _query_loss(_net(up, torch.float64), task, inner)
        loss_down = _query_loss(_net(down, torch.float64), task, inner)
        fd = (loss_up - loss_down) / (2 * eps)
        assert float(net.log_rates.grad[i]) == pytest.approx(fd, rel=1e-3, abs=1e-8)


@pytest.mark.parametrize("algorithm", [MetaAlgorithm.FOMAML, MetaAlgorithm.MAML])
def test_learn_rates_gives_the_rates_a_gradient_and_plain_runs_do_not(
    algorithm: MetaAlgorithm,
) -> None:
    task = tiny_meta_task()
    learned, plain = _net(), _net()
    inner = InnerConfig(steps=2, lr=0.3)
    accumulate_meta_grad(learned, ENC, task, replace(inner, learn_rates=True), algorithm, 1.0)
    accumulate_meta_grad(plain, ENC, task, inner, algorithm, 1.0)
    assert learned.log_rates.grad is not None
    assert torch.isfinite(learned.log_rates.grad).all() and learned.log_rates.grad.abs().sum() > 0
    assert plain.log_rates.grad is None or not plain.log_rates.grad.any()
    # the body's meta-gradient is the same whether or not the rates learn (they are all 1 here)
    for name, p in learned.weights_.items():
        q = plain.weights_[name]
        assert (p.grad is None) == (q.grad is None)
        if p.grad is not None and q.grad is not None:
            assert torch.allclose(p.grad, q.grad, atol=1e-6), name


def test_adaptation_uses_the_learned_rates() -> None:
    task = tiny_meta_task()
    inner = InnerConfig(steps=2, lr=0.2)
    net = _net([0.0, float(torch.log(torch.tensor(2.0))), 0.0])
    assert net.fixed_rates() == pytest.approx({"l0": 1.0, "l1": 2.0, "head": 1.0})
    got = adapt_encode(net, ENC, task.support_x, task.support_y, 3, inner)
    body = net.weights(ENC)
    start = detached({**body, **init_head(ENC, body, task.support_x, task.support_y, 3, "zero")})
    want = descend(
        ENC, start, task.support_x, task.support_y, inner, {"l0": 1.0, "l1": 2.0, "head": 1.0}
    )
    other = descend(ENC, start, task.support_x, task.support_y, inner)
    assert all(torch.allclose(got[k], want[k]) for k in got)
    assert not all(torch.allclose(got[k], other[k]) for k in got)


def test_a_run_that_learns_rates_moves_them_and_saves_them(tmp_path: Path) -> None:
    images = synthetic_images(n_classes=12, size=16)
    inner = InnerConfig(steps=2, lr=0.1, learn_rates=True)
    state = pipeline.meta_train(
        images, "tiny", iterations=8, budget_seconds=None, way=2, image_size=16, inner=inner
    )
    assert state.supernet.log_rates.detach().abs().sum() > 0
    state.save(tmp_path / "s.pt")
    loaded, _ = MetaState.load(tmp_path / "s.pt")
    assert torch.equal(loaded.supernet.log_rates, state.supernet.log_rates)
    assert loaded.config.inner.learn_rates


def test_a_supernet_saved_before_the_rates_loads_with_plain_rates() -> None:
    old = {k: v for k, v in _net().state_dict().items() if k != "log_rates"}
    net = Supernet(SPACE, seed=9)
    net.load_state_dict(old)
    assert net.fixed_rates() is None
    assert torch.equal(net.weights_["l0__conv3x3__w"], old["weights_.l0__conv3x3__w"])
