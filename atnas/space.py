"""The search space: per-layer operation and width choices, and the architecture encode value type.

An :class:`Encode` is a frozen, hashable tuple of :class:`LayerChoice` values. It is validated
against a :class:`SearchSpace` and round-trips through JSON::

    >>> space = SearchSpace()
    >>> enc = space.conv4()
    >>> Encode.from_json(enc.to_json()) == enc
    True
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from atnas.errors import EncodeError

#: Candidate operations, in registry order (see :mod:`atnas.ops`).
DEFAULT_OPS: tuple[str, ...] = (
    "conv3x3",
    "conv5x5",
    "dilconv3x3",
    "sepconv3x3",
    "sepconv5x5",
    "maxpool_conv1x1",
    "identity",
)
DEFAULT_WIDTHS: tuple[int, ...] = (16, 32, 48, 64)


@dataclass(frozen=True, order=True)
class LayerChoice:
    """One searchable layer: an operation name and an output width (channels)."""

    op: str
    width: int


@dataclass(frozen=True)
class Encode:
    """An architecture encode: the tuple of per-layer choices. Frozen, hashable, JSON-able."""

    layers: tuple[LayerChoice, ...]

    def to_json(self) -> list[dict[str, Any]]:
        """The encode as a JSON-serialisable list of ``{"op", "width"}`` objects."""
        return [{"op": c.op, "width": c.width} for c in self.layers]

    @classmethod
    def from_json(cls, data: Any) -> Encode:
        """Parses :meth:`to_json` output (or its JSON text); raises :class:`EncodeError`."""
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except json.JSONDecodeError as exc:
                raise EncodeError(f"encode is not valid JSON: {exc}") from None
        if not isinstance(data, list) or not data:
            raise EncodeError("encode must be a non-empty list of {op, width} objects")
        layers = []
        for i, item in enumerate(data):
            if not isinstance(item, dict) or set(item) != {"op", "width"}:
                raise EncodeError(f"layer {i}: expected an object with keys 'op' and 'width'")
            op, width = item["op"], item["width"]
            if not isinstance(op, str) or not isinstance(width, int) or isinstance(width, bool):
                raise EncodeError(f"layer {i}: 'op' must be a string and 'width' an integer")
            layers.append(LayerChoice(op, width))
        return cls(tuple(layers))

    @classmethod
    def of(cls, *choices: tuple[str, int]) -> Encode:
        """Shorthand: ``Encode.of(("conv3x3", 64), ("conv5x5", 32))``."""
        return cls(tuple(LayerChoice(op, w) for op, w in choices))

    def key(self) -> str:
        """A compact, stable text form, e.g. ``conv3x3:64|identity:64``."""
        return "|".join(f"{c.op}:{c.width}" for c in self.layers)

    def __str__(self) -> str:
        return self.key()


@dataclass(frozen=True)
class SearchSpace:
    """A chain of ``num_layers`` searchable layers over ``ops`` and ``widths``.

    ``identity`` is only valid where shapes allow it: not on the first layer, and with the
    same width as the layer before.
    """

    num_layers: int = 4
    ops: tuple[str, ...] = DEFAULT_OPS
    widths: tuple[int, ...] = DEFAULT_WIDTHS
    in_channels: int = 1
    _op_set: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        from atnas.ops import OPS  # late import: ops registers itself at import time

        if not 1 <= self.num_layers <= 8:
            raise EncodeError(f"num_layers must be in 1..8, got {self.num_layers}")
        if len(self.ops) < 1 or len(set(self.ops)) != len(self.ops):
            raise EncodeError("ops must be a non-empty list without repeats")
        unknown = [o for o in self.ops if o not in OPS]
        if unknown:
            raise EncodeError(f"unknown ops {unknown}; registered: {sorted(OPS)}")
        if (
            not self.widths
            or any(w < 1 for w in self.widths)
            or sorted(set(self.widths)) != list(self.widths)
        ):
            raise EncodeError("widths must be positive, strictly increasing integers")
        if self.in_channels not in (1, 3):
            raise EncodeError(f"in_channels must be 1 or 3, got {self.in_channels}")
        if self.ops == ("identity",):
            raise EncodeError("a space of identity alone has no valid encode")
        object.__setattr__(self, "_op_set", frozenset(self.ops))

    def up_to(self, width: int | None) -> SearchSpace:
        """This space without the widths above ``width`` (itself when ``width`` is None).

        >>> SearchSpace(ops=("conv3x3",), widths=(16, 64, 128)).up_to(64).widths
        (16, 64)
        """
        if width is None:
            return self
        kept = tuple(w for w in self.widths if w <= width)
        if not kept:
            raise EncodeError(f"no width of {list(self.widths)} is <= {width}")
        return replace(self, widths=kept)

    @property
    def max_width(self) -> int:
        """The widest choice: the supernet holds every op at this width."""
        return self.widths[-1]

    def errors(self, encode: Encode) -> list[str]:
        """Every reason why ``encode`` is not valid here (empty when it is)."""
        problems: list[str] = []
        if len(encode.layers) != self.num_layers:
            problems.append(f"expected {self.num_layers} layers, got {len(encode.layers)}")
        prev_width = None
        for i, c in enumerate(encode.layers):
            if c.op not in self._op_set:
                problems.append(f"layer {i}: op {c.op!r} is not in {list(self.ops)}")
            if c.width not in self.widths:
                problems.append(f"layer {i}: width {c.width} is not in {list(self.widths)}")
            if c.op == "identity" and (prev_width is None or c.width != prev_width):
                problems.append(
                    f"layer {i}: identity needs the previous layer's width"
                    + (" and cannot be the first layer" if prev_width is None else "")
                )
            prev_width = c.width
        return problems

    def is_valid(self, encode: Encode) -> bool:
        """True when ``encode`` belongs to this space."""
        return not self.errors(encode)

    def validate(self, encode: Encode) -> Encode:
        """Returns ``encode`` unchanged, or raises :class:`EncodeError` listing every problem."""
        problems = self.errors(encode)
        if problems:
            raise EncodeError(f"invalid encode {encode.key()}: " + "; ".join(problems))
        return encode

    def conv4(self) -> Encode:
        """The fixed Conv-4 baseline of MAML: conv 3x3 at the widest width in every layer."""
        if "conv3x3" not in self._op_set:
            raise EncodeError("this space has no conv3x3 op, so Conv-4 is not in it")
        return Encode(tuple(LayerChoice("conv3x3", self.max_width) for _ in range(self.num_layers)))

    def to_json(self) -> dict[str, Any]:
        """The space as JSON (stored in checkpoints and model.json)."""
        return {
            "num_layers": self.num_layers,
            "ops": list(self.ops),
            "widths": list(self.widths),
            "in_channels": self.in_channels,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SearchSpace:
        """Inverse of :meth:`to_json`."""
        return cls(
            num_layers=int(data["num_layers"]),
            ops=tuple(data["ops"]),
            widths=tuple(int(w) for w in data["widths"]),
            in_channels=int(data["in_channels"]),
        )


CONV4 = SearchSpace().conv4()
"""The Conv-4 encode of the default space (4 × conv 3x3, 64 channels)."""


def encodes_from_json(items: Sequence[Any]) -> list[Encode]:
    """Parses a list of JSON encodes."""
    return [Encode.from_json(x) for x in items]
