"""Warm widening: a net's new channels start as copies of its trained ones (Net2WiderNet).

When the evolution explores widths up to ``explore_width`` but the final widening
(:func:`atnas.population.widen_cheap_layers`) takes a layer beyond it, that layer's channels
past the explored width were never trained: with ``widen_init="random"`` the focus phase
starts them from their random initialisation, next to trained ones. :func:`warm_widened`
instead copies them from the trained channels (channel ``j`` from ``j mod trained``, with a
little noise on the copies' weights so that they can drift apart), divides the next layer's
input weights among a channel's copies, and scales the last layer's copies by
``1/sqrt(copies)``: with zero noise the widened net computes its parent's features exactly
(each feature repeated and rescaled), so nearest-prototype distances and the first inner
steps are the parent's. Chen, Goodfellow and Shlens, "Net2Net" (ICLR 2016).

Only the widened encode is exact: paths that read the divided input weights (narrower
members) see them scaled, which group norm mostly absorbs.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from atnas.ops import OPS
from atnas.space import Encode
from atnas.supernet import Supernet

#: Standard deviation of the noise added to copied weights, relative to the copied block's.
COPY_NOISE = 0.1


def copy_sources(width: int, trained: int) -> Tensor:
    """For each of ``width`` channels, the trained channel it starts from: itself below
    ``trained``, else ``j mod trained``. (width,) int64."""
    idx = torch.arange(width)
    return torch.where(idx < trained, idx, idx % trained)


def warm_widened(
    net: Supernet, encode: Encode, trained: int, noise: float = COPY_NOISE, seed: int = 0
) -> list[int]:
    """Fills the channels of ``encode``'s layers beyond ``trained`` with copies of channels
    below it, in place; returns the layers it widened (none when every layer fits)."""
    if trained < 1:
        raise ValueError("trained must be a positive width")
    gen = torch.Generator().manual_seed(seed)
    widened: list[int] = []
    cin = net.space.in_channels
    src_in: Tensor | None = None  # the previous layer's sources, when it was widened
    last = len(encode.layers) - 1
    with torch.no_grad():
        for i, choice in enumerate(encode.layers):
            op = OPS[choice.op]
            grows = choice.width > trained
            src_out = copy_sources(choice.width, trained)
            copies = torch.bincount(src_out, minlength=choice.width)[src_out].float()  # (width,)
            for pname, shape in op.params.items():
                block = op.slice(pname, net.full(i, choice.op, pname), cin, choice.width)
                if src_in is not None and "in" in shape:
                    _copy_along(block, shape.index("in"), src_in, divide="out" in shape)
                if grows and "out" in shape:
                    _copy_along(block, shape.index("out"), src_out, divide=False)
                    if block.dim() > 1 and noise > 0.0:
                        _perturb(block, shape.index("out"), trained, noise, gen)
            if grows:
                for pname in ("gn_w", "gn_b"):
                    gn = net.full(i, choice.op, pname)[: choice.width]
                    gn.copy_(gn[src_out.to(gn.device)])
                    if i == last:  # features: a feature's copies keep its share of distances
                        gn.div_(copies.to(gn.device).sqrt())
                widened.append(i)
            src_in = src_out if grows else None
            cin = choice.width
    return widened


def _copy_along(block: Tensor, dim: int, sources: Tensor, divide: bool) -> None:
    """``block`` re-indexed along ``dim`` by ``sources`` (in place); with ``divide`` each
    source's slices are shared among its copies (their sum keeps the original's)."""
    src = sources.to(block.device)
    new = block.index_select(dim, src)
    if divide:
        counts = torch.bincount(src, minlength=len(src))[src].to(block.dtype)
        view = [1] * block.dim()
        view[dim] = len(src)
        new = new / counts.view(view)
    block.copy_(new)


def _perturb(block: Tensor, dim: int, start: int, noise: float, gen: torch.Generator) -> None:
    """Adds noise of ``noise`` times the block's standard deviation to its slices past
    ``start`` along ``dim`` (the copies), from ``gen`` (the same on every worker)."""
    n = block.shape[dim] - start
    if n <= 0:
        return
    part = block.narrow(dim, start, n)
    scale = noise * float(block.narrow(dim, 0, start).std())
    if not math.isfinite(scale) or scale == 0.0:
        return
    part.add_(torch.randn(part.shape, generator=gen).to(part.device) * scale)
