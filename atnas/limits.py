"""Cost limits of a searched net (MACs, parameters, latency) and the cheapest cost a space allows.

A search job may bound the net it returns::

    >>> from atnas.space import SearchSpace
    >>> space = SearchSpace()
    >>> limits = CostLimits(max_macs=1_000_000)
    >>> check_feasible(space, limits, image_size=28, n_way=5)      # raises if impossible
    >>> ok = within(space, limits, image_size=28, n_way=5)
    >>> ok(space.conv4())                                            # Conv-4 costs ~10M MACs
    False

MACs and parameters come from :func:`atnas.cost.arch_cost` (the encode alone decides them);
latency is measured on the caller's device at batch 1 (:mod:`atnas.latency`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from atnas.cost import arch_cost
from atnas.errors import ConfigError, ConstraintError
from atnas.evolution import Constraint
from atnas.ops import OPS
from atnas.space import Encode, SearchSpace


@dataclass(frozen=True)
class CostLimits:
    """Upper bounds on a net's cost; ``None`` leaves that cost unbounded."""

    max_macs: int | None = None
    max_params: int | None = None
    max_latency_ms: float | None = None

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if value is not None and not (value > 0 and math.isfinite(value)):
                raise ConfigError(f"{name} must be a positive number, got {value}")

    @property
    def empty(self) -> bool:
        """True when nothing is bounded."""
        return all(v is None for v in asdict(self).values())

    def to_json(self) -> dict[str, Any]:
        """JSON form (``None`` for unbounded)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> CostLimits:
        """Inverse of :meth:`to_json`; ``None`` is no limit at all."""
        return cls(**(data or {}))


@dataclass(frozen=True)
class Cheapest:
    """The smallest MACs and the smallest parameter count of any valid encode of a space."""

    macs: int
    params: int


def body_floor(space: SearchSpace, image_size: int) -> dict[str, dict[int, int]]:
    """The cheapest body (layers without the head) ending at each last-layer width.

    Returns ``{"macs": {width: macs}, "params": {width: params}}``. A head over ``n`` classes
    adds ``n * width`` MACs and ``n * width + n`` parameters, so :func:`cheapest` (and a
    service without torch) takes the minimum over widths. A layer's cost depends on its op,
    its width and the width before it, so a pass over (layer, width) states finds the
    minimum exactly without listing every encode.
    """
    out: dict[str, dict[int, int]] = {}
    for kind in ("macs", "params"):
        states: dict[int | None, int] = {None: 0}  # previous width -> cheapest cost so far
        h = w = image_size
        for _ in range(space.num_layers):
            nxt: dict[int | None, int] = {}
            for prev, so_far in states.items():
                cin = space.in_channels if prev is None else prev
                for op_name in space.ops:
                    op = OPS[op_name]
                    for width in space.widths:
                        if op_name == "identity" and (prev is None or width != prev):
                            continue
                        if kind == "macs":
                            c = op.macs(cin, width, h, w) + 2 * width * h * w
                        else:
                            c = sum(math.prod(op.concrete_shape(p, cin, width)) for p in op.params)
                            c += 2 * width
                        if width not in nxt or so_far + c < nxt[width]:
                            nxt[width] = so_far + c
            states = nxt
            h, w = math.ceil(h / 2), math.ceil(w / 2)
        out[kind] = {width: c for width, c in states.items() if width is not None}
    return out


def cheapest(space: SearchSpace, image_size: int, n_way: int) -> Cheapest:
    """The lowest MACs and the lowest parameter count that any encode reaches (exact)."""
    floor = body_floor(space, image_size)
    return Cheapest(
        macs=min(c + n_way * width for width, c in floor["macs"].items()),
        params=min(c + n_way * width + n_way for width, c in floor["params"].items()),
    )


def check_feasible(space: SearchSpace, limits: CostLimits, image_size: int, n_way: int) -> None:
    """Raises :class:`ConstraintError` naming the smallest cost when a MAC or parameter bound
    can never be met. (Latency can only be known by measuring; see :mod:`atnas.latency`.)"""
    if limits.max_macs is None and limits.max_params is None:
        return
    low = cheapest(space, image_size, n_way)
    if limits.max_macs is not None and limits.max_macs < low.macs:
        raise ConstraintError(
            f"max_macs {limits.max_macs} cannot be met: the smallest net of this space costs "
            f"{low.macs} MACs at {image_size}px with {n_way} classes"
        )
    if limits.max_params is not None and limits.max_params < low.params:
        raise ConstraintError(
            f"max_params {limits.max_params} cannot be met: the smallest net of this space has "
            f"{low.params} parameters with {n_way} classes"
        )


def within(
    space: SearchSpace,
    limits: CostLimits,
    image_size: int,
    n_way: int,
    latency_ms: Callable[[Encode], float] | None = None,
) -> Constraint:
    """A predicate: does an encode meet every limit? Latency is measured only when bounded
    (and only for encodes that already meet the MAC and parameter bounds)."""
    if limits.max_latency_ms is not None and latency_ms is None:
        raise ConfigError("a latency limit needs a latency measurement (atnas.latency)")

    def ok(encode: Encode) -> bool:
        if not space.is_valid(encode):
            return False
        cost = arch_cost(space, encode, image_size, n_way)
        if limits.max_macs is not None and cost.flops > limits.max_macs:
            return False
        if limits.max_params is not None and cost.params > limits.max_params:
            return False
        if limits.max_latency_ms is not None:
            assert latency_ms is not None
            return latency_ms(encode) <= limits.max_latency_ms
        return True

    return ok
