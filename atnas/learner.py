"""The task (inner) optimiser: a few plain SGD steps from inherited weights on one task."""

from __future__ import annotations

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
    """

    steps: int = 5
    lr: float = 0.1
    head: str = "zero"
    head_scale: float = 1.0  # multiplies a proto head (a softmax temperature)

    def __post_init__(self) -> None:
        if self.head not in HEAD_INITS:
            raise ConfigError(f"inner head must be one of {HEAD_INITS}, got {self.head!r}")
        if self.steps < 0:
            raise ConfigError(f"inner steps must be >= 0, got {self.steps}")


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


MAX_HALVINGS = 6  # the step size may shrink to lr / 64 before the descent gives up


def descend(
    encode: Encode, weights: dict[str, Tensor], x: Tensor, y: Tensor, inner: InnerConfig
) -> dict[str, Tensor]:
    """Like :func:`adapt`, first-order, but a step that raises the support loss is undone.

    Test-time adaptation often runs more steps, on more images, than meta-training tuned its
    start for, and plain SGD at the meta-training rate can then oscillate back to chance. Here a
    step is kept only if the loss does not rise; otherwise the rate halves (for the remaining
    steps too) and the step is retried, at most :data:`MAX_HALVINGS` times in all. A stable
    descent costs the same forward and backward passes as :func:`adapt`, plus one forward.
    Returns detached leaves.
    """
    fast = detached(weights)
    names = list(fast)
    lr = inner.lr
    halvings = 0
    loss = F.cross_entropy(logits(x, encode, fast), y)
    for _ in range(inner.steps):
        grads = torch.autograd.grad(loss, [fast[k] for k in names])
        while True:
            with torch.no_grad():
                trial = {k: fast[k] - lr * g for k, g in zip(names, grads, strict=True)}
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
