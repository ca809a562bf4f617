"""The meta-population's ends and start: the widest and narrowest paths of the sandwich rule,
and a bounded initial population."""

from __future__ import annotations

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
