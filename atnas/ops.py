"""Registry of candidate operations. Each op is functional: weights come in as arguments.

An op declares its parameters with symbolic shapes (``"out"`` and ``"in"`` stand for the
layer's output and input widths), so that the supernet can store every op at its widest width
and a subnet takes slices ``w[:out, :in]`` of it, as in slimmable / Once-for-All supernets.
Register a new op with the :func:`register` decorator.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

Dim = int | str  # "in", "out" or a fixed size
Shape = tuple[Dim, ...]


@dataclass(frozen=True)
class Op:
    """A candidate operation: its parameters, forward function and cost model."""

    name: str
    params: dict[str, Shape]
    forward: Callable[[Tensor, dict[str, Tensor], int, int], Tensor]
    macs: Callable[[int, int, int, int], int]  # (cin, cout, h, w) -> multiply-accumulates

    def concrete_shape(self, pname: str, cin: int, cout: int) -> tuple[int, ...]:
        """The shape of parameter ``pname`` for input width ``cin`` and output width ``cout``."""
        return tuple(
            cin if d == "in" else cout if d == "out" else int(d) for d in self.params[pname]
        )

    def slice(self, pname: str, full: Tensor, cin: int, cout: int) -> Tensor:
        """A view of the full-width parameter cut to (``cin``, ``cout``)."""
        shape = self.concrete_shape(pname, cin, cout)
        return full[tuple(slice(0, s) for s in shape)]

    def init(self, pname: str, full: Tensor) -> None:
        """Initialises a full-width parameter in place (Kaiming for weights, zero for biases)."""
        with torch.no_grad():
            if full.dim() == 1:
                full.zero_()
            else:
                fan_in = math.prod(full.shape[1:])
                full.normal_(0.0, math.sqrt(2.0 / fan_in))


OPS: dict[str, Op] = {}


def register(
    name: str, params: dict[str, Shape], macs: Callable[[int, int, int, int], int]
) -> Callable[[Callable[[Tensor, dict[str, Tensor], int, int], Tensor]], Op]:
    """Decorator that registers a functional op under ``name``."""

    def wrap(fn: Callable[[Tensor, dict[str, Tensor], int, int], Tensor]) -> Op:
        if name in OPS:
            raise ValueError(f"op {name!r} registered twice")
        op = Op(name, params, fn, macs)
        OPS[name] = op
        return op

    return wrap


def _conv_macs(k: int) -> Callable[[int, int, int, int], int]:
    return lambda cin, cout, h, w: h * w * cout * cin * k * k


def _sep_macs(k: int) -> Callable[[int, int, int, int], int]:
    return lambda cin, cout, h, w: h * w * cin * k * k + h * w * cin * cout


@register("conv3x3", {"w": ("out", "in", 3, 3), "b": ("out",)}, _conv_macs(3))
def conv3x3(x: Tensor, p: dict[str, Tensor], cin: int, cout: int) -> Tensor:
    """3x3 convolution. (B, cin, H, W) -> (B, cout, H, W)."""
    return F.conv2d(x, p["w"], p["b"], padding=1)


@register("conv5x5", {"w": ("out", "in", 5, 5), "b": ("out",)}, _conv_macs(5))
def conv5x5(x: Tensor, p: dict[str, Tensor], cin: int, cout: int) -> Tensor:
    """5x5 convolution. (B, cin, H, W) -> (B, cout, H, W)."""
    return F.conv2d(x, p["w"], p["b"], padding=2)


@register("dilconv3x3", {"w": ("out", "in", 3, 3), "b": ("out",)}, _conv_macs(3))
def dilconv3x3(x: Tensor, p: dict[str, Tensor], cin: int, cout: int) -> Tensor:
    """3x3 convolution with dilation 2 (a 5x5 receptive field at 3x3 cost)."""
    return F.conv2d(x, p["w"], p["b"], padding=2, dilation=2)


@register(
    "sepconv3x3", {"dw": ("in", 1, 3, 3), "pw": ("out", "in", 1, 1), "b": ("out",)}, _sep_macs(3)
)
def sepconv3x3(x: Tensor, p: dict[str, Tensor], cin: int, cout: int) -> Tensor:
    """Depthwise 3x3 then pointwise 1x1 convolution."""
    return F.conv2d(F.conv2d(x, p["dw"], padding=1, groups=cin), p["pw"], p["b"])


@register(
    "sepconv5x5", {"dw": ("in", 1, 5, 5), "pw": ("out", "in", 1, 1), "b": ("out",)}, _sep_macs(5)
)
def sepconv5x5(x: Tensor, p: dict[str, Tensor], cin: int, cout: int) -> Tensor:
    """Depthwise 5x5 then pointwise 1x1 convolution."""
    return F.conv2d(F.conv2d(x, p["dw"], padding=2, groups=cin), p["pw"], p["b"])


@register(
    "maxpool_conv1x1",
    {"w": ("out", "in", 1, 1), "b": ("out",)},
    lambda cin, cout, h, w: h * w * cin * cout,
)
def maxpool_conv1x1(x: Tensor, p: dict[str, Tensor], cin: int, cout: int) -> Tensor:
    """3x3 max-pool (stride 1) then a 1x1 convolution."""
    return F.conv2d(F.max_pool2d(x, 3, stride=1, padding=1), p["w"], p["b"])


@register("identity", {}, lambda cin, cout, h, w: 0)
def identity(x: Tensor, p: dict[str, Tensor], cin: int, cout: int) -> Tensor:
    """The input unchanged (valid only when cin == cout; the search space enforces it)."""
    return x
