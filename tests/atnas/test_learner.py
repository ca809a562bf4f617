"""The task (inner) optimiser: SGD from inherited weights, scoring and prediction."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from atnas.learner import MAX_HALVINGS, InnerConfig, adapt, descend, detached, predict, score
from atnas.space import Encode, SearchSpace
from atnas.supernet import Supernet, logits, zero_head
from atnas.tasks import to_float
from tests.atnas.conftest import synthetic_images

SPACE = SearchSpace(num_layers=3, widths=(8, 16))
ENC = Encode.of(("conv3x3", 16), ("sepconv3x3", 8), ("conv3x3", 16))


def _support() -> tuple[torch.Tensor, torch.Tensor]:
    s = synthetic_images(4, 3, size=8)
    return to_float(s.images), torch.arange(4).repeat_interleave(3)


def test_adaptation_lowers_support_loss() -> None:
    x, y = _support()
    start = detached({**Supernet(SPACE).weights(ENC), **zero_head(ENC, 4)})
    _, loss0 = score(ENC, start, x, y)
    assert abs(loss0 - torch.log(torch.tensor(4.0)).item()) < 1e-6  # zero head: uniform
    losses = [
        score(ENC, adapt(ENC, start, x, y, InnerConfig(steps=s, lr=0.2)), x, y)[1]
        for s in (1, 4, 12)
    ]
    assert loss0 > losses[0] > losses[1] > losses[2]
    assert losses[2] < 0.8 * loss0


def test_adapt_is_plain_sgd_by_hand() -> None:
    x, y = _support()
    start = detached({**Supernet(SPACE, seed=2).weights(ENC), **zero_head(ENC, 4)})
    ref = {k: v.detach().clone().requires_grad_(True) for k, v in start.items()}
    for _ in range(2):
        loss = F.cross_entropy(logits(x, ENC, ref), y)
        grads = torch.autograd.grad(loss, list(ref.values()))
        ref = {
            k: (v - 0.3 * g).detach().requires_grad_(True)
            for (k, v), g in zip(ref.items(), grads, strict=True)
        }
    got = adapt(ENC, start, x, y, InnerConfig(steps=2, lr=0.3))
    assert set(got) == set(start)
    for k in ref:
        assert torch.allclose(got[k], ref[k], atol=1e-6), k


def test_adapt_does_not_touch_its_start_weights() -> None:
    x, y = _support()
    start = detached({**Supernet(SPACE).weights(ENC), **zero_head(ENC, 4)})
    before = {k: v.clone() for k, v in start.items()}
    adapt(ENC, start, x, y, InnerConfig(steps=3, lr=0.5))
    for k, v in start.items():
        assert torch.equal(v, before[k])


def test_zero_steps_is_identity() -> None:
    x, y = _support()
    start = detached({**Supernet(SPACE).weights(ENC), **zero_head(ENC, 4)})
    got = adapt(ENC, start, x, y, InnerConfig(steps=0, lr=0.5))
    assert all(got[k] is start[k] for k in start)


def test_descend_equals_sgd_while_the_loss_falls() -> None:
    x, y = _support()
    start = detached({**Supernet(SPACE, seed=2).weights(ENC), **zero_head(ENC, 4)})
    cfg = InnerConfig(steps=3, lr=0.05)
    ref = adapt(ENC, start, x, y, cfg)
    losses = [score(ENC, adapt(ENC, start, x, y, InnerConfig(s, 0.05)), x, y)[1] for s in range(4)]
    assert losses == sorted(losses, reverse=True)  # plain SGD never overshoots here
    got = descend(ENC, start, x, y, cfg)
    for k in ref:
        assert torch.allclose(got[k], ref[k], atol=1e-6), k
        assert got[k].is_leaf and not got[k].requires_grad


def test_descend_never_raises_the_loss_where_sgd_diverges() -> None:
    x, y = _support()
    start = detached({**Supernet(SPACE, seed=2).weights(ENC), **zero_head(ENC, 4)})
    loss0 = score(ENC, start, x, y)[1]
    sgd = [score(ENC, adapt(ENC, start, x, y, InnerConfig(s, 50.0)), x, y)[1] for s in (1, 2, 3)]
    assert max(sgd) > loss0  # this rate overshoots with plain SGD
    guarded = [
        score(ENC, descend(ENC, start, x, y, InnerConfig(s, 50.0)), x, y)[1] for s in (1, 2, 8)
    ]
    assert guarded[0] <= loss0 and guarded == sorted(guarded, reverse=True)
    assert guarded[-1] < loss0


def test_descend_gives_up_and_keeps_the_start_when_no_step_helps() -> None:
    x, y = _support()
    start = detached({**Supernet(SPACE, seed=2).weights(ENC), **zero_head(ENC, 4)})
    # A rate so large that even after MAX_HALVINGS halvings every step overshoots.
    huge = 1e9 * 2**MAX_HALVINGS
    got = descend(ENC, start, x, y, InnerConfig(steps=4, lr=huge))
    for k in start:
        assert torch.equal(got[k], start[k].detach()), k


def test_detached_copies_are_leaves_without_shared_storage() -> None:
    net = Supernet(SPACE)
    views = net.weights(ENC)
    d = detached(views)
    for k, v in d.items():
        assert v.is_leaf and v.requires_grad
        assert v.data_ptr() != views[k].data_ptr()
        assert torch.equal(v, views[k])


def test_score_and_predict_by_hand() -> None:
    x, y = _support()
    gen = torch.Generator().manual_seed(0)
    w = {
        **Supernet(SPACE).weights(ENC),
        "head.w": torch.randn(4, 16, generator=gen),
        "head.b": torch.randn(4, generator=gen),
    }
    out = logits(x, ENC, w)
    acc, loss = score(ENC, w, x, y)
    assert loss == F.cross_entropy(out, y).item()
    assert acc == (out.argmax(1) == y).float().mean().item()
    assert torch.equal(predict(ENC, w, x), out.argmax(1))
