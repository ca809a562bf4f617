"""Every registered op: forward shape, backward, every parameter gets a gradient, cost model."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from atnas.ops import OPS, Op, register
from atnas.space import DEFAULT_OPS, Encode, SearchSpace
from atnas.supernet import Supernet, features, norm_groups

ALL_OPS = sorted(OPS)


def _params(op: Op, cin: int, cout: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
    return {
        name: torch.randn(op.concrete_shape(name, cin, cout), generator=gen).requires_grad_(True)
        for name in op.params
    }


def test_registry_holds_the_default_ops() -> None:
    assert set(DEFAULT_OPS) <= set(OPS)
    assert len(OPS) >= 7
    for name, op in OPS.items():
        assert op.name == name


def test_registering_a_name_twice_fails() -> None:
    with pytest.raises(ValueError, match="twice"):
        register("conv3x3", {}, lambda cin, cout, h, w: 0)(lambda x, p, cin, cout: x)


@pytest.mark.parametrize("name", ALL_OPS)
@pytest.mark.parametrize("hw", [(9, 9), (6, 7)])
def test_op_forward_shape_and_every_parameter_gets_a_gradient(
    name: str, hw: tuple[int, int]
) -> None:
    op = OPS[name]
    gen = torch.Generator().manual_seed(0)
    cin, cout = (5, 5) if name == "identity" else (3, 6)
    x = torch.randn(2, cin, *hw, generator=gen, requires_grad=True)
    p = _params(op, cin, cout, gen)
    y = op.forward(x, p, cin, cout)
    assert y.shape == (2, cout, *hw)
    assert torch.isfinite(y).all()
    (y * torch.randn(y.shape, generator=gen)).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    for pname, t in p.items():
        assert t.grad is not None, pname
        assert torch.isfinite(t.grad).all(), pname
        assert t.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", ALL_OPS)
def test_op_slice_is_a_view_of_the_full_parameter(name: str) -> None:
    op = OPS[name]
    for pname in op.params:
        full = torch.randn(op.concrete_shape(pname, 16, 16))
        part = op.slice(pname, full, 4, 8)
        assert part.shape == op.concrete_shape(pname, 4, 8)
        assert part.data_ptr() == full.data_ptr()  # a view, no copy
        part.add_(1.0)
        assert torch.equal(full[tuple(slice(0, s) for s in part.shape)], part)


def test_op_init_kaiming_for_weights_zero_for_bias() -> None:
    op = OPS["conv3x3"]
    w, b = torch.empty(64, 32, 3, 3), torch.ones(64)
    op.init("w", w)
    op.init("b", b)
    assert torch.equal(b, torch.zeros(64))
    assert w.std().item() == pytest.approx((2.0 / (32 * 9)) ** 0.5, rel=0.05)


def test_ops_compute_what_their_names_say() -> None:
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(1, 3, 7, 7, generator=gen)
    w3 = torch.randn(4, 3, 3, 3, generator=gen)
    b = torch.randn(4, generator=gen)
    ref = F.conv2d(F.pad(x, (1, 1, 1, 1)), w3, b)
    assert torch.allclose(OPS["conv3x3"].forward(x, {"w": w3, "b": b}, 3, 4), ref, atol=1e-5)
    # dilation 2 is a 5x5 kernel with holes
    w5 = torch.zeros(4, 3, 5, 5)
    w5[:, :, ::2, ::2] = w3
    ref = F.conv2d(x, w5, b, padding=2)
    assert torch.allclose(OPS["dilconv3x3"].forward(x, {"w": w3, "b": b}, 3, 4), ref, atol=1e-5)
    # separable = per-channel conv, then a 1x1 mix
    dw, pw = torch.randn(3, 1, 3, 3, generator=gen), torch.randn(4, 3, 1, 1, generator=gen)
    per_channel = torch.cat(
        [F.conv2d(x[:, c : c + 1], dw[c : c + 1], padding=1) for c in range(3)], 1
    )
    ref = torch.einsum("bchw,oc->bohw", per_channel, pw[:, :, 0, 0]) + b[None, :, None, None]
    got = OPS["sepconv3x3"].forward(x, {"dw": dw, "pw": pw, "b": b}, 3, 4)
    assert torch.allclose(got, ref, atol=1e-5)
    assert torch.equal(OPS["identity"].forward(x, {}, 3, 3), x)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("conv3x3", 7 * 5 * 8 * 4 * 9),
        ("conv5x5", 7 * 5 * 8 * 4 * 25),
        ("dilconv3x3", 7 * 5 * 8 * 4 * 9),
        ("sepconv3x3", 7 * 5 * 4 * 9 + 7 * 5 * 4 * 8),
        ("sepconv5x5", 7 * 5 * 4 * 25 + 7 * 5 * 4 * 8),
        ("maxpool_conv1x1", 7 * 5 * 4 * 8),
        ("identity", 0),
    ],
)
def test_op_macs_by_hand(name: str, expected: int) -> None:
    assert OPS[name].macs(4, 8, 7, 5) == expected


def _encode_using(name: str, space: SearchSpace) -> Encode:
    """Every layer uses ``name`` (identity: behind a first conv layer of equal width)."""
    if name == "identity":
        return Encode.of(("conv3x3", 8), *[("identity", 8)] * (space.num_layers - 1))
    return Encode.of(*[(name, w) for w in (8, 16, 8)][: space.num_layers])


@pytest.mark.parametrize("name", ALL_OPS)
def test_op_through_the_supernet_gets_gradients_in_used_slices(name: str) -> None:
    space = SearchSpace(num_layers=3, ops=tuple(OPS), widths=(8, 16))
    net = Supernet(space, seed=0)
    encode = space.validate(_encode_using(name, space))
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(3, 1, 12, 12, generator=gen)
    out = net(x, encode)
    assert out.shape == (3, encode.layers[-1].width)
    (out * torch.randn(out.shape, generator=gen)).sum().backward()
    views = net.weights(encode)
    used = {
        f"l{i}__{c.op}__{p}"
        for i, c in enumerate(encode.layers)
        for p in [*OPS[c.op].params, "gn_w", "gn_b"]
    }
    for key, param in net.weights_.items():
        if key not in used:
            assert param.grad is None, key
            continue
        assert param.grad is not None, key
        assert torch.isfinite(param.grad).all(), key
        if param.dim() > 1 or key.endswith("gn_w") or key.endswith("gn_b"):
            assert param.grad.abs().sum() > 0, key
    assert len(views) == len(used)


@pytest.mark.parametrize("num_layers", [3, 4, 5, 6])
@pytest.mark.parametrize("size", [28, 13])
def test_norm_relu_pool_shapes_for_3_to_6_layers(num_layers: int, size: int) -> None:
    space = SearchSpace(num_layers=num_layers, widths=(4, 8))
    encode = Encode.of(*[("conv3x3", 8 if i % 2 else 4) for i in range(num_layers)])
    w = Supernet(space).weights(encode)
    x = torch.rand(2, 1, size, size)
    # by hand: op -> group norm -> relu -> 2x2 max-pool (ceil); spatial side halves, rounding up
    h = x
    side = size
    for i, c in enumerate(encode.layers):
        h = F.conv2d(h, w[f"l{i}.w"], w[f"l{i}.b"], padding=1)
        h = F.group_norm(h, norm_groups(c.width), w[f"l{i}.gn_w"], w[f"l{i}.gn_b"])
        h = F.max_pool2d(F.relu(h), 2, ceil_mode=True)
        side = -(-side // 2)
        assert h.shape == (2, c.width, side, side)
        assert (h >= 0).all()
    out = features(x, encode, w)
    assert out.shape == (2, encode.layers[-1].width)
    assert torch.allclose(out, h.mean(dim=(2, 3)), atol=1e-6)


@pytest.mark.parametrize(
    ("width", "groups"), [(8, 1), (16, 2), (48, 6), (64, 8), (4, 1), (12, 3), (6, 3)]
)
def test_norm_groups_hold_a_fixed_number_of_channels(width: int, groups: int) -> None:
    assert norm_groups(width) == groups
    assert width % norm_groups(width) == 0
