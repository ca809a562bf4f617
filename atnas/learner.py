"""The task (inner) optimiser: a few plain SGD steps from inherited weights on one task."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from atnas.errors import ConfigError
from atnas.space import Encode
from atnas.supernet import init_head, logits

HEAD_INITS = ("proto", "zero")


@dataclass(frozen=True)
class InnerConfig:
    """Inner-loop settings: number of SGD steps, their learning rate, and the task head's start.

    ``head="proto"`` starts the head from the support set's class prototypes (Proto-MAML);
    ``"zero"`` from zeros (plain MAML: the first step then trains the head alone).

    ``learn_rates`` (meta-training only; fomaml and maml) meta-learns one step-size multiplier
    per layer and one for the head, after Meta-SGD (Li et al. 2017) at the granularity of
    MAML++'s per-layer rates: they live in the supernet (:meth:`Supernet.rates`) and every
    later adaptation of it uses them, at any ``lr`` and number of steps.
    """

    steps: int = 5
    lr: float = 0.1
    head: str = "zero"
    head_scale: float = 1.0  # multiplies a proto head (a softmax temperature)
    learn_rates: bool = False

    def __post_init__(self) -> None:
        if self.head not in HEAD_INITS:
            raise ConfigError(f"inner head must be one of {HEAD_INITS}, got {self.head!r}")
        if self.steps < 0:
            raise ConfigError(f"inner steps must be >= 0, got {self.steps}")


def rate_group(key: str) -> str:
    """The learned-rate group of weight ``key``: its layer (``l0``, ``l1``, ...) or ``head``."""
    return key.split(".", 1)[0]


Rates = Mapping[str, Tensor | float]
"""Step-size multipliers by :func:`rate_group` (see :meth:`Supernet.rates`)."""


def adapt(
    encode: Encode,
    weights: dict[str, Tensor],
    x: Tensor,
    y: Tensor,
    inner: InnerConfig,
    create_graph: bool = False,
    rates: Rates | None = None,
) -> dict[str, Tensor]:
    """Weights after ``inner.steps`` SGD steps on cross-entropy over (x, y).

    ``weights`` must require grad (use :func:`detached` for plain adaptation). With
    ``create_graph`` the result stays differentiable w.r.t. ``weights`` (second-order MAML).
    ``rates`` multiply ``inner.lr`` per layer; tensors that require grad keep the result
    differentiable w.r.t. them (how meta-training learns them).
    """
    fast = dict(weights)
    names = list(fast)
    steps = {k: inner.lr if rates is None else inner.lr * rates[rate_group(k)] for k in names}
    for _ in range(inner.steps):
        loss = F.cross_entropy(logits(x, encode, fast), y)
        grads = torch.autograd.grad(loss, [fast[k] for k in names], create_graph=create_graph)
        fast = {k: fast[k] - steps[k] * g for k, g in zip(names, grads, strict=True)}
    return fast


MAX_HALVINGS = 6  # the step size may shrink to lr / 64 before the descent gives up


def descend(
    encode: Encode,
    weights: dict[str, Tensor],
    x: Tensor,
    y: Tensor,
    inner: InnerConfig,
    rates: Mapping[str, float] | None = None,
) -> dict[str, Tensor]:
    """Like :func:`adapt`, first-order, but a step that raises the support loss is undone.

    Test-time adaptation often runs more steps, on more images, than meta-training tuned its
    start for, and plain SGD at the meta-training rate can then oscillate back to chance. Here a
    step is kept only if the loss does not rise; otherwise the rate halves (for the remaining
    steps too) and the step is retried, at most :data:`MAX_HALVINGS` times in all. A stable
    descent costs the same forward and backward passes as :func:`adapt`, plus one forward.
    ``rates`` (learned, per layer) multiply the step size. Returns detached leaves.
    """
    fast = detached(weights)
    names = list(fast)
    lr = inner.lr
    mult = {k: 1.0 if rates is None else rates[rate_group(k)] for k in names}
    halvings = 0
    loss = F.cross_entropy(logits(x, encode, fast), y)
    for _ in range(inner.steps):
        grads = torch.autograd.grad(loss, [fast[k] for k in names])
        while True:
            with torch.no_grad():
                trial = {k: fast[k] - lr * mult[k] * g for k, g in zip(names, grads, strict=True)}
            trial = {k: v.requires_grad_(True) for k, v in trial.items()}
            trial_loss = F.cross_entropy(logits(x, encode, trial), y)
            if trial_loss.item() <= loss.item():
                fast, loss = trial, trial_loss
                break
            if halvings == MAX_HALVINGS:
                return {k: v.detach() for k, v in fast.items()}
            halvings += 1
            lr /= 2
    return {k: v.detach() for k, v in fast.items()}


def start_weights(
    body: dict[str, Tensor], encode: Encode, x: Tensor, y: Tensor, n_way: int, inner: InnerConfig
) -> dict[str, Tensor]:
    """Detached leaf copies of ``body`` plus the task head ``inner.head`` asks for."""
    head = init_head(encode, body, x, y, n_way, inner.head)
    return detached({**body, **{k: inner.head_scale * v for k, v in head.items()}})


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
