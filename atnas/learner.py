"""The task (inner) optimiser: a few plain SGD steps from inherited weights on one task."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from atnas.space import Encode
from atnas.supernet import logits


@dataclass(frozen=True)
class InnerConfig:
    """Inner-loop settings: number of SGD steps and their learning rate."""

    steps: int = 5
    lr: float = 0.1


def adapt(
    encode: Encode,
    weights: dict[str, Tensor],
    x: Tensor,
    y: Tensor,
    inner: InnerConfig,
    create_graph: bool = False,
) -> dict[str, Tensor]:
    """Weights after ``inner.steps`` SGD steps on cross-entropy over (x, y).

    ``weights`` must require grad (use :func:`detached` for plain adaptation). With
    ``create_graph`` the result stays differentiable w.r.t. ``weights`` (second-order MAML).
    """
    fast = dict(weights)
    names = list(fast)
    for _ in range(inner.steps):
        loss = F.cross_entropy(logits(x, encode, fast), y)
        grads = torch.autograd.grad(loss, [fast[k] for k in names], create_graph=create_graph)
        fast = {k: fast[k] - inner.lr * g for k, g in zip(names, grads, strict=True)}
    return fast


def detached(weights: dict[str, Tensor]) -> dict[str, Tensor]:
    """Leaf copies of ``weights`` that require grad and share no graph with their source."""
    return {k: v.detach().clone().requires_grad_(True) for k, v in weights.items()}


@torch.no_grad()
def score(encode: Encode, weights: dict[str, Tensor], x: Tensor, y: Tensor) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) of the adapted subnet on (x, y)."""
    out = logits(x, encode, weights)
    loss = F.cross_entropy(out, y).item()
    acc = (out.argmax(1) == y).float().mean().item()
    return acc, loss


@torch.no_grad()
def predict(encode: Encode, weights: dict[str, Tensor], x: Tensor) -> Tensor:
    """Predicted class indices for x (B, C, H, W) -> (B,)."""
    return logits(x, encode, weights).argmax(1)
