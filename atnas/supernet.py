"""The weight-sharing supernet and the pure functional forward of any subnet in it.

Every layer stores every candidate op at the widest width; a subnet is an :class:`Encode` plus
slices of those tensors. The encode is always an argument (``supernet(x, encode)``), never
module state, so one supernet can serve many encodes at once.

Layer ``i`` computes ``op_i -> group norm (no running statistics) -> ReLU -> 2x2 max-pool``;
then global average pooling and a linear head over the task's classes. The head is not part of
the supernet: each task starts from a head of its own size (any N-way works, and the
prediction is invariant to the order of classes), either zero or built from the class
prototypes of its support set (Proto-MAML: the head then starts as a nearest-prototype
classifier, so the first inner step already trains the body).

Group norm uses a fixed number of channels per group (:data:`CHANNELS_PER_GROUP`), not a fixed
number of groups: the first ``k`` channels of a wide layer and the ``k`` channels of a narrow
one are then normalised over the same groups, so a width-16 subnet computes exactly the first
16 channels of the width-64 layer (with 8 groups at every width they differed by ~0.5).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from atnas.ops import OPS
from atnas.space import Encode, SearchSpace

CHANNELS_PER_GROUP = 8


def _pkey(layer: int, op: str, name: str) -> str:
    return f"l{layer}__{op}__{name}"


def norm_groups(width: int) -> int:
    """Group count of the group norm after a layer of ``width`` channels.

    Groups hold :data:`CHANNELS_PER_GROUP` channels (fewer only when ``width`` is not a
    multiple of it), so that shared channels are normalised alike at every width.
    """
    return width // math.gcd(width, CHANNELS_PER_GROUP)


class Supernet(nn.Module):
    """All candidate ops of every layer at full width, plus per-op norm affine parameters."""

    def __init__(self, space: SearchSpace, seed: int = 0) -> None:
        super().__init__()
        self.space = space
        self.weights_ = nn.ParameterDict()
        gen = torch.Generator().manual_seed(seed)
        cmax = space.max_width
        for i in range(space.num_layers):
            cin = space.in_channels if i == 0 else cmax
            for op_name in space.ops:
                op = OPS[op_name]
                for pname in op.params:
                    shape = op.concrete_shape(pname, cin, cmax)
                    t = torch.empty(shape)
                    if t.dim() == 1:
                        t.zero_()
                    else:
                        fan_in = math.prod(shape[1:])
                        t.normal_(0.0, math.sqrt(2.0 / fan_in), generator=gen)
                    self.weights_[_pkey(i, op_name, pname)] = nn.Parameter(t)
                self.weights_[_pkey(i, op_name, "gn_w")] = nn.Parameter(torch.ones(cmax))
                self.weights_[_pkey(i, op_name, "gn_b")] = nn.Parameter(torch.zeros(cmax))
        # Inner-loop step-size multipliers, one per layer and one for the head, as logs (0:
        # the plain rate); trained only by a run with ``InnerConfig.learn_rates``.
        self.log_rates = nn.Parameter(torch.zeros(space.num_layers + 1))

    def rates(self) -> dict[str, Tensor]:
        """Learned step-size multipliers by rate group (``l0``, ..., ``head``), differentiable."""
        r = self.log_rates.exp()
        return {g: r[k] for k, g in enumerate(self.rate_groups())}

    def rate_groups(self) -> list[str]:
        """The groups of :meth:`rates`, in the order of ``log_rates``."""
        return [f"l{i}" for i in range(self.space.num_layers)] + ["head"]

    def fixed_rates(self) -> dict[str, float] | None:
        """:meth:`rates` as plain numbers for adaptation, or None when none was learned."""
        logs = self.log_rates.detach()
        if not bool(logs.any()):
            return None
        r = logs.exp().tolist()
        return {g: r[k] for k, g in enumerate(self.rate_groups())}

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False
    ) -> Any:
        """As :meth:`nn.Module.load_state_dict`; a state saved before the learned rates
        (2026-12-04) loads with plain rates."""
        if "log_rates" not in state_dict:
            state_dict = {**state_dict, "log_rates": torch.zeros_like(self.log_rates)}
        return super().load_state_dict(state_dict, strict, assign)

    def full(self, layer: int, op: str, name: str) -> Tensor:
        """The full-width tensor of parameter ``name`` (or ``gn_w``/``gn_b``) of ``op`` at
        ``layer``."""
        param: Tensor = self.weights_[_pkey(layer, op, name)]
        return param

    def weights(self, encode: Encode) -> dict[str, Tensor]:
        """Views of the supernet tensors that make up ``encode``'s body (gradients flow back).

        Keys are ``l{i}.{param}``; the op is implied by the encode.
        """
        out: dict[str, Tensor] = {}
        cin = self.space.in_channels
        for i, c in enumerate(encode.layers):
            op = OPS[c.op]
            for pname in op.params:
                out[f"l{i}.{pname}"] = op.slice(
                    pname, self.weights_[_pkey(i, c.op, pname)], cin, c.width
                )
            out[f"l{i}.gn_w"] = self.weights_[_pkey(i, c.op, "gn_w")][: c.width]
            out[f"l{i}.gn_b"] = self.weights_[_pkey(i, c.op, "gn_b")][: c.width]
            cin = c.width
        return out

    def forward(self, x: Tensor, encode: Encode) -> Tensor:
        """Features of ``encode`` for a batch ``x`` (B, C, H, W) -> (B, width of last layer)."""
        return features(x, encode, self.weights(encode))


def features(x: Tensor, encode: Encode, weights: dict[str, Tensor]) -> Tensor:
    """The body of a subnet as a pure function. (B, C, H, W) -> (B, C_last)."""
    cin = x.shape[1]
    for i, c in enumerate(encode.layers):
        op = OPS[c.op]
        p = {pname: weights[f"l{i}.{pname}"] for pname in op.params}
        x = op.forward(x, p, cin, c.width)  # (B, width, H, W)
        x = F.group_norm(x, norm_groups(c.width), weights[f"l{i}.gn_w"], weights[f"l{i}.gn_b"])
        x = F.max_pool2d(F.relu(x), 2, ceil_mode=True)  # (B, width, ceil(H/2), ceil(W/2))
        cin = c.width
    return x.mean(dim=(2, 3))


def logits(x: Tensor, encode: Encode, weights: dict[str, Tensor]) -> Tensor:
    """Class scores of a subnet with its task head. (B, C, H, W) -> (B, N)."""
    return F.linear(features(x, encode, weights), weights["head.w"], weights["head.b"])


def proto_head(feats: Tensor, y: Tensor, n_way: int) -> dict[str, Tensor]:
    """A linear head equal to the nearest-prototype classifier on ``feats`` (B, C).

    With class means ``p_c``, ``-|f - p_c|^2 = 2 p_c.f - |p_c|^2 - |f|^2``; the last term is the
    same for every class, so ``w_c = 2 p_c`` and ``b_c = -|p_c|^2`` rank classes as the
    distances do (Proto-MAML, Triantafillou et al. 2020). Detached from ``feats``.
    """
    protos = class_means(feats.detach(), y, n_way)  # (N, C)
    return {"head.w": 2 * protos, "head.b": -(protos**2).sum(1)}


def class_means(x: Tensor, y: Tensor, n_way: int) -> Tensor:
    """Per-class means of the rows of ``x`` flattened: (B, ...) -> (N, D); a class without
    rows gets zeros."""
    flat = x.flatten(1)
    onehot = F.one_hot(y, n_way).to(flat.dtype)  # (B, N)
    return (onehot.t() @ flat) / onehot.sum(0).clamp_min(1.0).unsqueeze(1)


def init_head(
    encode: Encode, weights: dict[str, Tensor], x: Tensor, y: Tensor, n_way: int, kind: str
) -> dict[str, Tensor]:
    """The task head an inner loop starts from: ``"proto"`` (from (x, y)) or ``"zero"``."""
    if kind == "zero":
        return zero_head(encode, n_way, x.device)
    with torch.no_grad():
        return proto_head(features(x, encode, weights), y, n_way)


def zero_head(encode: Encode, n_way: int, device: torch.device | None = None) -> dict[str, Tensor]:
    """A fresh all-zero linear head for an ``n_way`` task on ``encode``'s features."""
    width = encode.layers[-1].width
    return {
        "head.w": torch.zeros(n_way, width, device=device),
        "head.b": torch.zeros(n_way, device=device),
    }
