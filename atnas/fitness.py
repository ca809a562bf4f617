"""Fitness of an encode on a novel task, computed from the support set alone.

- K >= 2 shots per class: ``folds`` hold-out splits; each holds out one image per class,
  adapts on the rest and scores the held-out images.
- 1 shot: adapt on the support images, score on ``views`` augmented copies of them (small
  random rotations, scalings and shifts).

Every candidate is scored on the same splits and the same augmentations, so fitness values
are comparable. Query images are never an input here: the search cannot see them.
A candidate's fitness carries its hold-out accuracy, its mean cross-entropy and the squared
standard error of that mean (from the per-image losses): the search ranks by loss, which is
less noisy than accuracy on 5-25 held-out images, and shrinks by the standard error.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from atnas.errors import DatasetError
from atnas.learner import InnerConfig, descend, start_weights
from atnas.space import Encode
from atnas.supernet import Supernet, logits
from atnas.tasks import augment

LOSS_WEIGHT = 0.001


@dataclass(frozen=True)
class Fitness:
    """Hold-out accuracy and mean loss of a candidate, and the loss mean's squared std. error."""

    acc: float
    loss: float
    loss_se2: float = 0.0

    @property
    def value(self) -> float:
        """A scalar to maximise without a prior: accuracy, ties broken by loss."""
        return self.acc - LOSS_WEIGHT * self.loss


@dataclass(frozen=True)
class Split:
    """Adapt on (x, y), then score on (hx, hy)."""

    x: Tensor
    y: Tensor
    hx: Tensor
    hy: Tensor


def support_splits(
    x: Tensor, y: Tensor, n_way: int, folds: int = 2, views: int = 2, seed: int = 0
) -> list[Split]:
    """The hold-out splits of a support set (see the module docstring)."""
    per_class = [torch.nonzero(y == c).flatten() for c in range(n_way)]
    if any(len(ix) == 0 for ix in per_class):
        raise DatasetError("every class needs at least one support image")
    min_shot = min(len(ix) for ix in per_class)
    if min_shot == 1:
        gen = torch.Generator().manual_seed(seed)
        return [Split(x, y, augment(x, gen), y) for _ in range(views)]
    splits = []
    for f in range(min(folds, min_shot)):
        held = torch.stack([ix[f % len(ix)] for ix in per_class])
        mask = torch.ones(len(y), dtype=torch.bool)
        mask[held] = False
        splits.append(Split(x[mask], y[mask], x[held], y[held]))
    return splits


def adapt_encode(
    supernet: Supernet, encode: Encode, x: Tensor, y: Tensor, n_way: int, inner: InnerConfig
) -> dict[str, Tensor]:
    """Inherited weights of ``encode`` plus a task head (``inner.head``), adapted on (x, y).

    Uses the guarded descent (:func:`atnas.learner.descend`), so that a search's fitness and
    its final model come from the same, stable procedure.
    """
    body = supernet.weights(encode)
    start = start_weights(body, encode, x, y, n_way, inner)
    return descend(encode, start, x, y, inner, supernet.fixed_rates())


def split_fitness(
    supernet: Supernet, encode: Encode, splits: Sequence[Split], n_way: int, inner: InnerConfig
) -> Fitness:
    """Mean hold-out accuracy and loss of ``encode`` over ``splits`` (every held-out image)."""
    correct, losses = [], []
    for s in splits:
        w = adapt_encode(supernet, encode, s.x, s.y, n_way, inner)
        with torch.no_grad():
            out = logits(s.hx, encode, w)
            losses.append(F.cross_entropy(out, s.hy, reduction="none"))
            correct.append((out.argmax(1) == s.hy).float())
    per_image = torch.cat(losses)
    n = len(per_image)
    se2 = float(per_image.var().item()) / n if n > 1 else 0.0
    return Fitness(float(torch.cat(correct).mean().item()), float(per_image.mean().item()), se2)


Evaluator = Callable[[Sequence[Encode]], list[Fitness]]
"""Scores a batch of encodes on one task (local, or spread over Ray actors)."""

EvaluatorFactory = Callable[[Sequence[Split], int, InnerConfig], Evaluator]
"""Builds an evaluator for a task from its support splits, class count and inner loop."""


class LocalEvaluator:
    """Scores encodes one after another in this process."""

    def __init__(
        self, supernet: Supernet, splits: Sequence[Split], n_way: int, inner: InnerConfig
    ) -> None:
        self.supernet, self.splits, self.n_way, self.inner = supernet, splits, n_way, inner

    def __call__(self, encodes: Sequence[Encode]) -> list[Fitness]:
        return [
            split_fitness(self.supernet, e, self.splits, self.n_way, self.inner) for e in encodes
        ]
