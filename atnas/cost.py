"""Parameter count and FLOPs of a subnet, computed from its encode alone."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from atnas.ops import OPS
from atnas.space import Encode, SearchSpace


@dataclass(frozen=True)
class LayerCost:
    """One layer's op, widths, input size, parameters and multiply-accumulates."""

    index: int
    op: str
    in_width: int
    width: int
    input_hw: tuple[int, int]
    params: int
    macs: int


@dataclass(frozen=True)
class ArchCost:
    """Totals for a subnet with an ``n_way`` head on ``image_size`` inputs.

    ``flops`` counts multiply-accumulates (the convention of most NAS papers).
    """

    layers: tuple[LayerCost, ...]
    params: int
    flops: int

    def to_json(self) -> dict[str, Any]:
        """JSON form, used in ``arch.json``."""
        return {
            "params": self.params,
            "flops": self.flops,
            "layers": [asdict(layer) for layer in self.layers],
        }


def arch_cost(space: SearchSpace, encode: Encode, image_size: int, n_way: int) -> ArchCost:
    """Parameter count and FLOPs (MACs) of ``encode`` at ``image_size`` with an ``n_way`` head."""
    space.validate(encode)
    h = w = image_size
    cin = space.in_channels
    layers = []
    for i, c in enumerate(encode.layers):
        op = OPS[c.op]
        n = sum(math.prod(op.concrete_shape(p, cin, c.width)) for p in op.params)
        n += 2 * c.width  # group-norm affine
        macs = op.macs(cin, c.width, h, w) + 2 * c.width * h * w  # + normalisation
        layers.append(LayerCost(i, c.op, cin, c.width, (h, w), n, macs))
        h, w = math.ceil(h / 2), math.ceil(w / 2)
        cin = c.width
    head_params = n_way * cin + n_way
    return ArchCost(
        tuple(layers),
        params=sum(layer.params for layer in layers) + head_params,
        flops=sum(layer.macs for layer in layers) + n_way * cin,
    )
