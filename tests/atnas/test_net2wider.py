"""Warm widening: copied channels keep the parent's features; the focus phase uses it."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from atnas.errors import ConfigError
from atnas.net2wider import copy_sources, warm_widened
from atnas.space import Encode, SearchSpace
from atnas.supernet import Supernet
from tests.atnas.test_metatrain import CFG, _widening_trainer

SPACE = SearchSpace(num_layers=4, widths=(8, 16, 32), in_channels=1)


def _trained_like(seed: int = 0) -> Supernet:
    """A supernet whose norm parameters are not at their initial values (as if trained)."""
    net = Supernet(SPACE, seed=seed)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in net.weights_.items():
            if name.endswith(("gn_w", "gn_b", "__b")):
                p.add_(0.3 * torch.randn(p.shape, generator=gen))
    return net


def _pairwise(f: torch.Tensor) -> torch.Tensor:
    return torch.cdist(f, f)


def test_copy_sources_are_the_channel_modulo_the_trained_width() -> None:
    assert copy_sources(6, 4).tolist() == [0, 1, 2, 3, 0, 1]
    assert copy_sources(3, 4).tolist() == [0, 1, 2]


@pytest.mark.parametrize(
    "parent,child",
    [
        ((8, 16, 16, 16), (8, 16, 32, 32)),  # the late layers doubled
        ((16, 16, 16, 16), (16, 16, 16, 32)),  # the last layer only
        ((16, 8, 16, 16), (16, 8, 32, 16)),  # a middle layer only
        ((16, 16, 16, 16), (32, 16, 16, 16)),  # the first layer
    ],
)
def test_without_noise_the_widened_net_keeps_its_parents_distances(
    parent: tuple[int, ...], child: tuple[int, ...]
) -> None:
    net = _trained_like()
    x = torch.rand(10, 1, 16, 16)
    small = Encode.of(*(("conv3x3", w) for w in parent))
    wide = Encode.of(*(("conv3x3", w) for w in child))
    before = net(x, small).detach()
    layers = warm_widened(net, wide, trained=16, noise=0.0)
    after = net(x, wide).detach()
    assert layers == [i for i, (a, b) in enumerate(zip(parent, child, strict=True)) if b > a]
    assert after.shape[1] == child[-1]
    # nearest-prototype distances (what the proto head and the floors use) are the parent's
    torch.testing.assert_close(_pairwise(after), _pairwise(before), atol=1e-4, rtol=1e-4)
    if child[-1] > parent[-1]:  # each feature repeated, scaled by 1/sqrt(2)
        torch.testing.assert_close(after[:, :16], after[:, 16:])
        torch.testing.assert_close(after[:, :16] * 2**0.5, before, atol=1e-5, rtol=1e-5)


def test_noise_makes_the_copies_differ_a_little_and_is_the_same_for_the_same_seed() -> None:
    wide = Encode.of(("conv3x3", 16), ("conv3x3", 16), ("conv3x3", 32), ("conv3x3", 32))
    nets = [_trained_like(), _trained_like(), _trained_like()]
    for net, seed in zip(nets, (0, 0, 1), strict=True):
        warm_widened(net, wide, trained=16, noise=0.1, seed=seed)
    w = nets[0].full(2, "conv3x3", "w")[:32, :16].detach()
    gap = (w[16:] - w[:16]).abs().mean() / w[:16].abs().mean()
    assert 0.01 < float(gap) < 0.3  # near copies, not equal
    torch.testing.assert_close(nets[0].full(2, "conv3x3", "w"), nets[1].full(2, "conv3x3", "w"))
    assert not torch.equal(nets[0].full(2, "conv3x3", "w"), nets[2].full(2, "conv3x3", "w"))


def test_nothing_changes_when_no_layer_goes_past_the_trained_width() -> None:
    net = _trained_like()
    before = {k: v.detach().clone() for k, v in net.state_dict().items()}
    assert warm_widened(net, SPACE.conv4(), trained=32) == []
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k
    with pytest.raises(ValueError, match="trained"):
        warm_widened(net, SPACE.conv4(), trained=0)


def test_the_focus_phase_copies_the_channels_the_widening_added() -> None:
    space = SearchSpace(num_layers=3, widths=(4, 8, 16))
    trainer = _widening_trainer(space, final_widen=1.0, widen_init="copy")
    trainer._cost = lambda encode: 1.0  # type: ignore[method-assign]  # every width is free
    begin = trainer.begin_focus
    seen: dict[str, torch.Tensor] = {}

    def spying() -> None:
        begin()
        st = trainer.state
        assert st.focus is not None
        for i, c in enumerate(st.focus.layers):
            if c.width > 8:
                seen[f"l{i}"] = st.supernet.full(i, c.op, "gn_w")[: c.width].detach().clone()

    trainer.begin_focus = spying  # type: ignore[method-assign]
    trainer.run()
    assert seen  # the final widening took some layer past the explored width
    for gn_w in seen.values():  # each widened channel's norm scale is its source's
        assert not torch.equal(gn_w[:8], torch.ones(8))  # trained (not its initial value)
        torch.testing.assert_close(gn_w[8:16], gn_w[:8])
    with pytest.raises(ConfigError, match="widen_init"):
        dataclasses.replace(CFG, widen_init="zeros")
