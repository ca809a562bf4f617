"""The meta-population's ends and start: the widest and narrowest paths of the sandwich rule,
and a bounded initial population."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from atnas.evolution import random_encode
from atnas.space import Encode, LayerChoice, SearchSpace


def widest(space: SearchSpace) -> Encode:
    """The widest path that the sandwich rule trains: Conv-4 when the space has conv3x3."""
    if "conv3x3" in space.ops:
        return space.conv4()
    first = next(o for o in space.ops if o != "identity")
    return Encode(tuple(LayerChoice(first, space.max_width) for _ in range(space.num_layers)))


def uniform_paths(space: SearchSpace) -> list[Encode]:
    """The widest path's op at every width of the space, one width for all layers (Conv-4
    at 16, 32, ... channels in the default space): the fixed nets a pick can fall back to."""
    op = widest(space).layers[0].op
    return [
        Encode(tuple(LayerChoice(op, w) for _ in range(space.num_layers))) for w in space.widths
    ]


def widen_cheap_layers(
    space: SearchSpace,
    encode: Encode,
    cost: Callable[[Encode], float],
    extra: float,
    *,
    base: float | None = None,
    narrow_first: bool = False,
) -> Encode:
    """``encode`` with its cheapest layers widened to the widest width, last layer first,
    while the training cost stays within ``(1 + extra)`` times ``base`` (the original's cost
    unless given).

    A late layer runs on a small feature map (3x3 pixels in the default space), so its width
    costs almost nothing, yet the last one is the width of the features every task is
    classified on. A pick scored on a few 5-way tasks on shared weights cannot see that
    capacity (it shows on wider tasks and after longer training): this takes it where it
    is nearly free. Layers whose widening would make the encode invalid are left alone.

    With ``narrow_first`` a widening that would go over the limit may be paid for by the
    first layer, which runs on the largest feature map and sets the input width of the
    costliest convolution: it narrows to the widest width that fits, never below half its
    width in ``encode``; if none fits, the layer is left alone.

    >>> space = SearchSpace(ops=("conv3x3",), widths=(16, 64))
    >>> enc = Encode.of(("conv3x3", 64), ("conv3x3", 16), ("conv3x3", 16), ("conv3x3", 16))
    >>> macs = lambda e: sum(a.width * b.width for a, b in zip(e.layers, e.layers[1:]))
    >>> widen_cheap_layers(space, enc, macs, 0.5).key()  # +50%: the last layer only
    'conv3x3:64|conv3x3:16|conv3x3:16|conv3x3:64'
    """
    limit = (1.0 + extra) * (cost(encode) if base is None else base)
    layers = list(encode.layers)
    first = encode.layers[0]
    for i in reversed(range(len(layers))):
        if layers[i].width == space.max_width:
            continue
        trial = layers.copy()
        trial[i] = LayerChoice(layers[i].op, space.max_width)
        options = [trial]
        if narrow_first and i > 0:
            narrower = [w for w in space.widths if first.width / 2 <= w < layers[0].width]
            for w in sorted(narrower, reverse=True):
                paid = trial.copy()
                paid[0] = LayerChoice(layers[0].op, w)
                options.append(paid)
        for option in options:
            wider = Encode(tuple(option))
            if space.is_valid(wider) and cost(wider) <= limit:
                layers = option
                break
    return Encode(tuple(layers))


def narrowest(space: SearchSpace, rng: np.random.Generator) -> Encode:
    """A random path at the smallest width of every layer (the sandwich rule's other end)."""
    narrow = SearchSpace(space.num_layers, space.ops, space.widths[:1], space.in_channels)
    return random_encode(narrow, rng)


def initial_population(space: SearchSpace, n: int, rng: np.random.Generator) -> list[Encode]:
    """``n`` distinct encodes: the widest path, then random ones (fewer if the space is small).

    Bounded: a space with fewer than ``n`` valid encodes gives all it has after a fixed
    number of draws instead of looping forever.
    """
    pop = [widest(space)]
    for _ in range(50 * n):
        if len(pop) >= n:
            break
        enc = random_encode(space, rng)
        if enc not in pop:
            pop.append(enc)
    return pop[:n]
