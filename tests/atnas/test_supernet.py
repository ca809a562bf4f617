"""The supernet: weights of an encode are views, the encode is an argument, heads are fresh."""

from __future__ import annotations

import pytest
import torch

from atnas.space import Encode, SearchSpace
from atnas.supernet import Supernet, features, logits, proto_head, zero_head

SPACE = SearchSpace(num_layers=3, widths=(8, 16))


def test_supernet_stores_every_op_at_full_width() -> None:
    net = Supernet(SPACE)
    assert net.weights_["l0__conv3x3__w"].shape == (16, 1, 3, 3)
    assert net.weights_["l1__conv5x5__w"].shape == (16, 16, 5, 5)
    assert net.weights_["l2__sepconv3x3__dw"].shape == (16, 1, 3, 3)
    assert net.weights_["l1__identity__gn_w"].shape == (16,)
    assert "l0__identity__gn_w" in net.weights_  # harmless: identity is never valid on layer 0


def test_same_seed_same_supernet_and_other_seed_differs() -> None:
    a, b, c = Supernet(SPACE, seed=3), Supernet(SPACE, seed=3), Supernet(SPACE, seed=4)
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k])
    assert not torch.equal(a.weights_["l1__conv3x3__w"], c.weights_["l1__conv3x3__w"])


def test_weights_are_views_of_the_supernet_parameters() -> None:
    net = Supernet(SPACE)
    e = Encode.of(("conv3x3", 8), ("sepconv3x3", 16), ("conv5x5", 8))
    w = net.weights(e)
    assert set(w) == {
        "l0.w", "l0.b", "l0.gn_w", "l0.gn_b",
        "l1.dw", "l1.pw", "l1.b", "l1.gn_w", "l1.gn_b",
        "l2.w", "l2.b", "l2.gn_w", "l2.gn_b",
    }  # fmt: skip
    assert w["l0.w"].shape == (8, 1, 3, 3)
    assert w["l1.dw"].shape == (8, 1, 3, 3)  # depthwise over the 8 input channels
    assert w["l1.pw"].shape == (16, 8, 1, 1)
    assert w["l2.w"].shape == (8, 16, 5, 5)
    assert w["l2.w"].data_ptr() == net.weights_["l2__conv5x5__w"].data_ptr()
    with torch.no_grad():
        net.weights_["l2__conv5x5__w"][0, 0, 0, 0] = 123.0
    assert w["l2.w"][0, 0, 0, 0].item() == 123.0


def test_gradients_flow_into_only_the_used_slices() -> None:
    net = Supernet(SPACE, seed=1)
    e = Encode.of(("conv3x3", 8), ("conv3x3", 8), ("conv3x3", 16))
    x = torch.rand(4, 1, 10, 10, generator=torch.Generator().manual_seed(0))
    w = {**net.weights(e), "head.w": torch.randn(3, 16), "head.b": torch.zeros(3)}
    logits(x, e, w).logsumexp(1).sum().backward()
    g0 = net.weights_["l0__conv3x3__w"].grad
    g1 = net.weights_["l1__conv3x3__w"].grad
    g2 = net.weights_["l2__conv3x3__w"].grad
    assert g0 is not None and g1 is not None and g2 is not None
    assert g0[:8].abs().sum() > 0 and torch.all(g0[8:] == 0)
    assert g1[:8, :8].abs().sum() > 0
    assert torch.all(g1[8:] == 0) and torch.all(g1[:, 8:] == 0)
    assert g2[:, :8].abs().sum() > 0 and torch.all(g2[:, 8:] == 0)
    gn = net.weights_["l0__conv3x3__gn_w"].grad
    assert gn is not None and gn[:8].abs().sum() > 0 and torch.all(gn[8:] == 0)
    assert net.weights_["l0__conv5x5__w"].grad is None


def test_encode_is_an_argument_not_state() -> None:
    net = Supernet(SPACE, seed=0)
    a = Encode.of(("conv3x3", 16), ("conv3x3", 16), ("conv3x3", 16))
    b = Encode.of(("conv5x5", 16), ("maxpool_conv1x1", 16), ("identity", 16))
    x = torch.rand(2, 1, 12, 12, generator=torch.Generator().manual_seed(0))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    ya1 = net(x, a)
    yb = net(x, b)
    ya2 = net(x, a)
    assert not torch.allclose(ya1, yb)
    assert torch.equal(ya1, ya2)  # b in between left nothing behind
    assert torch.equal(ya1, features(x, a, net.weights(a)))
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k])


def test_widths_share_the_leading_channels() -> None:
    """A narrow subnet is the first channels of the wide one (slimmable weight sharing)."""
    net = Supernet(SPACE, seed=0)
    wide = net.weights(Encode.of(("conv3x3", 16), ("conv3x3", 16), ("conv3x3", 16)))
    narrow = net.weights(Encode.of(("conv3x3", 8), ("conv3x3", 16), ("conv3x3", 16)))
    assert torch.equal(narrow["l0.w"], wide["l0.w"][:8])
    assert torch.equal(narrow["l1.w"], wide["l1.w"][:, :8])


def test_zero_head_and_logits_shape() -> None:
    e = Encode.of(("conv3x3", 8), ("conv3x3", 8), ("conv3x3", 16))
    head = zero_head(e, 5)
    assert head["head.w"].shape == (5, 16) and head["head.b"].shape == (5,)
    assert torch.count_nonzero(head["head.w"]) == 0
    w = {**Supernet(SPACE).weights(e), **head}
    out = logits(torch.rand(7, 1, 9, 9), e, w)
    assert out.shape == (7, 5)
    assert torch.all(out == 0)  # a zero head predicts uniformly: no class is favoured


def test_three_channel_space() -> None:
    space = SearchSpace(num_layers=3, widths=(8,), in_channels=3)
    net = Supernet(space)
    e = space.conv4()
    assert net.weights(e)["l0.w"].shape == (8, 3, 3, 3)
    assert net(torch.rand(2, 3, 8, 8), e).shape == (2, 8)


@pytest.mark.parametrize("op", ["conv3x3", "conv5x5", "dilconv3x3", "maxpool_conv1x1"])
def test_a_narrow_layer_computes_the_leading_channels_of_the_wide_one(op: str) -> None:
    """Fixed channels per norm group: shared channels are normalised alike at every width."""
    space = SearchSpace(num_layers=2, widths=(16, 32, 48, 64))
    net = Supernet(space, seed=1)
    with torch.no_grad():  # non-trivial norm affine parameters
        for k, v in net.weights_.items():
            if "gn_" in k:
                v.add_(0.2 * torch.randn(v.shape))
    x = torch.rand(3, 1, 12, 12)
    first = ("conv3x3", 32)
    for narrow in (16, 32, 48):
        a = features_of(net, Encode.of(first, (op, narrow)), x)
        b = features_of(net, Encode.of(first, (op, 64)), x)
        assert torch.allclose(a, b[:, :narrow], atol=1e-5), narrow


def features_of(net: Supernet, encode: Encode, x: torch.Tensor) -> torch.Tensor:
    return features(x, encode, net.weights(encode))


def test_proto_head_is_the_nearest_prototype_classifier() -> None:
    gen = torch.Generator().manual_seed(0)
    feats = torch.rand(12, 6, generator=gen)
    y = torch.arange(4).repeat(3)
    head = proto_head(feats, y, 4)
    protos = torch.stack([feats[y == c].mean(0) for c in range(4)])
    q = torch.rand(20, 6, generator=gen)
    scores = q @ head["head.w"].t() + head["head.b"]
    assert torch.equal(scores.argmax(1), torch.cdist(q, protos).argmin(1))
    # the differences between classes are those of the negative squared distances
    d = -(torch.cdist(q, protos) ** 2)
    assert torch.allclose(scores - scores[:, :1], d - d[:, :1], atol=1e-5)
