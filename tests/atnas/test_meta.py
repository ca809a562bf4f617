"""Meta-gradients (FOMAML, MAML, Reptile) against an inner loop written by hand on plain tensors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from atnas.learner import InnerConfig
from atnas.meta import MetaAlgorithm, accumulate_meta_grad
from atnas.space import Encode, SearchSpace
from atnas.supernet import Supernet
from tests.atnas.conftest import tiny_meta_task

# A tiny net: two conv3x3 layers of 4 channels (one group-norm group of 4) on 6x6 images.
SPACE = SearchSpace(num_layers=2, ops=("conv3x3", "identity"), widths=(4,))
ENC = Encode.of(("conv3x3", 4), ("conv3x3", 4))
INNER = InnerConfig(steps=2, lr=0.3, head="zero")
NAMES = ["l0.w", "l0.b", "l0.gn_w", "l0.gn_b", "l1.w", "l1.b", "l1.gn_w", "l1.gn_b", "hw", "hb"]
PARAM = {  # hand name -> supernet parameter
    "l0.w": "l0__conv3x3__w",
    "l0.b": "l0__conv3x3__b",
    "l0.gn_w": "l0__conv3x3__gn_w",
    "l0.gn_b": "l0__conv3x3__gn_b",
    "l1.w": "l1__conv3x3__w",
    "l1.b": "l1__conv3x3__b",
    "l1.gn_w": "l1__conv3x3__gn_w",
    "l1.gn_b": "l1__conv3x3__gn_b",
}


def _net() -> Supernet:
    net = Supernet(SPACE, seed=7)
    with torch.no_grad():  # non-trivial norm affine and biases, so every path carries gradient
        gen = torch.Generator().manual_seed(3)
        for key in PARAM.values():
            if key.endswith(("gn_w", "gn_b", "__b")):
                net.weights_[key].add_(0.3 * torch.randn(net.weights_[key].shape, generator=gen))
    return net


def _forward(p: list[Tensor], x: Tensor) -> Tensor:
    """The subnet by hand: (conv -> group norm (1 group) -> relu -> pool) x 2 -> mean -> linear."""
    w0, b0, g0, s0, w1, b1, g1, s1, hw, hb = p
    h = F.conv2d(x, w0, b0, padding=1)
    h = F.max_pool2d(F.relu(F.group_norm(h, 1, g0, s0)), 2, ceil_mode=True)
    h = F.conv2d(h, w1, b1, padding=1)
    h = F.max_pool2d(F.relu(F.group_norm(h, 1, g1, s1)), 2, ceil_mode=True)
    return F.linear(h.mean(dim=(2, 3)), hw, hb)


def _initial(net: Supernet) -> list[Tensor]:
    body = [net.weights_[PARAM[n]].detach().clone() for n in NAMES[:8]]
    return [t.requires_grad_(True) for t in [*body, torch.zeros(3, 4), torch.zeros(3)]]


def _inner(p: list[Tensor], x: Tensor, y: Tensor, create_graph: bool) -> list[Tensor]:
    for _ in range(INNER.steps):
        g = torch.autograd.grad(F.cross_entropy(_forward(p, x), y), p, create_graph=create_graph)
        p = [t - INNER.lr * gt for t, gt in zip(p, g, strict=True)]
    return p


def _grads(net: Supernet) -> dict[str, Tensor]:
    out = {}
    for n, key in PARAM.items():
        g = net.weights_[key].grad
        assert g is not None, n
        out[n] = g.clone()
    return out


def test_hand_forward_matches_the_supernet() -> None:
    from atnas.supernet import logits, zero_head

    net, t = _net(), tiny_meta_task()
    p = _initial(net)
    with torch.no_grad():
        p[8].normal_()
        w = {**net.weights(ENC), **zero_head(ENC, 3)}
        w["head.w"] = p[8]
        assert torch.allclose(_forward(p, t.query_x), logits(t.query_x, ENC, w), atol=1e-6)


def test_fomaml_gradient_equals_hand_reference() -> None:
    net, t = _net(), tiny_meta_task()
    out = accumulate_meta_grad(net, ENC, t, INNER, MetaAlgorithm.FOMAML, scale=0.5)
    fast = [
        q.detach().requires_grad_(True)
        for q in _inner(_initial(net), t.support_x, t.support_y, False)
    ]
    query_loss = F.cross_entropy(_forward(fast, t.query_x), t.query_y)
    ref = torch.autograd.grad(query_loss, fast)
    got = _grads(net)
    for i, n in enumerate(NAMES[:8]):
        assert torch.allclose(got[n], 0.5 * ref[i], atol=1e-6, rtol=1e-4), n
        assert got[n].abs().sum() > 0, n
    assert out.loss == pytest.approx(query_loss.item(), rel=1e-5)
    preds = _forward(fast, t.query_x).argmax(1)
    assert out.acc == pytest.approx((preds == t.query_y).float().mean().item())
    # the identity op's norm parameters are unused here: no gradient
    assert net.weights_["l1__identity__gn_w"].grad is None


def test_meta_gradients_accumulate_over_tasks() -> None:
    net, t = _net(), tiny_meta_task()
    accumulate_meta_grad(net, ENC, t, INNER, MetaAlgorithm.FOMAML, scale=0.5)
    once = _grads(net)
    accumulate_meta_grad(net, ENC, t, INNER, MetaAlgorithm.FOMAML, scale=0.5)
    twice = _grads(net)
    for n in once:
        assert torch.allclose(twice[n], 2 * once[n], atol=1e-6), n


def test_second_order_maml_equals_hand_reference_and_differs_from_first_order() -> None:
    net, t = _net(), tiny_meta_task()
    accumulate_meta_grad(net, ENC, t, INNER, MetaAlgorithm.MAML, scale=1.0)
    got = _grads(net)
    p0 = _initial(net)
    fast = _inner(p0, t.support_x, t.support_y, create_graph=True)
    ref = torch.autograd.grad(F.cross_entropy(_forward(fast, t.query_x), t.query_y), p0)
    for i, n in enumerate(NAMES[:8]):
        assert torch.allclose(got[n], ref[i], atol=1e-6, rtol=1e-4), n

    net_fo = _net()
    accumulate_meta_grad(net_fo, ENC, t, INNER, MetaAlgorithm.FOMAML, scale=1.0)
    first = _grads(net_fo)
    diff = sum((got[n] - first[n]).abs().sum().item() for n in got)
    size = sum(first[n].abs().sum().item() for n in first)
    assert diff > 1e-3 * size


def test_reptile_gradient_is_initial_minus_adapted() -> None:
    net, t = _net(), tiny_meta_task()
    before = {n: net.weights_[k].detach().clone() for n, k in PARAM.items()}
    accumulate_meta_grad(net, ENC, t, INNER, MetaAlgorithm.REPTILE, scale=0.25)
    got = _grads(net)
    x = torch.cat([t.support_x, t.query_x])
    y = torch.cat([t.support_y, t.query_y])
    adapted = _inner(_initial(net), x, y, create_graph=False)
    for i, n in enumerate(NAMES[:8]):
        assert torch.allclose(got[n], 0.25 * (before[n] - adapted[i].detach()), atol=1e-6), n
        if not n.endswith(".b"):
            assert got[n].abs().sum() > 0, n


@pytest.mark.parametrize("algorithm", list(MetaAlgorithm))
def test_meta_step_leaves_weights_alone_and_only_touches_used_slices(
    algorithm: MetaAlgorithm,
) -> None:
    space = SearchSpace(num_layers=3, widths=(4, 8))
    net = Supernet(space, seed=0)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    enc = Encode.of(("conv3x3", 4), ("sepconv3x3", 8), ("identity", 8))
    out = accumulate_meta_grad(net, enc, tiny_meta_task(), INNER, algorithm, scale=1.0)
    assert 0.0 <= out.acc <= 1.0 and out.loss > 0
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k
    g = net.weights_["l0__conv3x3__w"].grad
    assert g is not None and g[:4].abs().sum() > 0 and torch.all(g[4:] == 0)
    assert net.weights_["l1__conv3x3__w"].grad is None
