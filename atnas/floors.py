"""Two floors that an adapted model must beat, scored on the same hold-out splits as fitness.

- ``pixel_centroid``: nearest class mean on raw pixels (no network at all);
- ``feature_prototype``: nearest class prototype on the subnet's inherited features, with no
  gradient step (what the meta-trained features give for free).

If the adapted model is not above both, fine-tuning (or the whole supernet) is not worth
deploying for that task; a search job reports all three side by side. With two or more shots
per class :func:`check_pixel_floor` compares the adapted subnet and the pixel centroid on
held-out support images (leave one image per class out, a few folds); when the pixels win, the
search job ships the pixel-centroid classifier instead (docs/benchmarks.md, "Issue 6, round 6":
on scikit-learn's 8x8 digits it beat every meta-trained net by 6 points at 5 shots).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor

from atnas.fitness import Split, adapt_encode, support_splits
from atnas.learner import InnerConfig
from atnas.space import Encode
from atnas.supernet import Supernet, class_means, features, logits

#: Folds of the pixel-floor check (each holds out one support image per class).
FLOOR_FOLDS = 3


def centroid_scores(x: Tensor, y: Tensor, hx: Tensor, n_way: int) -> Tensor:
    """Negative squared distances of ``hx`` rows to the class means of (x, y). (B, D) -> (H, N)."""
    return -(torch.cdist(hx, class_means(x, y, n_way)) ** 2)


def accuracy(scores: Tensor, hy: Tensor) -> float:
    """Share of rows of ``scores`` (H, N) whose largest entry is at ``hy``."""
    return float((scores.argmax(1) == hy).float().mean().item())


@torch.no_grad()
def pixel_centroid_acc(x: Tensor, y: Tensor, hx: Tensor, hy: Tensor, n_way: int) -> float:
    """Accuracy on (hx, hy) of nearest-centroid on flattened pixels of (x, y)."""
    return accuracy(centroid_scores(x.flatten(1), y, hx.flatten(1), n_way), hy)


@torch.no_grad()
def feature_prototype_acc(
    supernet: Supernet, encode: Encode, x: Tensor, y: Tensor, hx: Tensor, hy: Tensor, n_way: int
) -> float:
    """Accuracy on (hx, hy) of nearest-prototype on ``encode``'s inherited features."""
    w = supernet.weights(encode)
    return accuracy(centroid_scores(features(x, encode, w), y, features(hx, encode, w), n_way), hy)


def split_floors(
    supernet: Supernet, encode: Encode, splits: Sequence[Split], n_way: int
) -> dict[str, float]:
    """Mean hold-out accuracy of both floors over ``splits``."""
    pix = [pixel_centroid_acc(s.x, s.y, s.hx, s.hy, n_way) for s in splits]
    feat = [feature_prototype_acc(supernet, encode, s.x, s.y, s.hx, s.hy, n_way) for s in splits]
    return {
        "pixel_centroid": sum(pix) / len(pix),
        "feature_prototype": sum(feat) / len(feat),
    }


def floors_report(
    support: dict[str, float], model_support: float, query: dict[str, Any] | None
) -> dict[str, Any]:
    """The floors block of metrics.json: support (and query) figures and the verdict.

    The verdict uses the query figures when there are any (they are what a user's data will
    look like), else the support hold-out.
    """
    ref = query if query is not None else {**support, "model": model_support}
    return {
        "support": {**support, "model": model_support},
        "query": query,
        "model_beats_floors": bool(
            ref["model"] >= max(ref["pixel_centroid"], ref["feature_prototype"])
        ),
    }


def pixel_logit_scale(x: Tensor, y: Tensor, n_way: int) -> float:
    """``1 / (2 var D)`` for the pixel classifier's logits ``-scale * |x - mean_c|^2``.

    ``var`` is the pooled within-class variance of the support images' pixels and ``D`` the
    number of pixels: a logit is minus half the mean squared pixel difference to a class
    mean, in units of that variance — about -0.5 for an image of the class. (The full
    Gaussian log-likelihood, without the ``1 / D``, gives logits in the tens of thousands:
    probabilities of exactly 0 and 1, and float32 rounding above 1e-4.)
    """
    flat = x.flatten(1)
    resid = flat - class_means(x, y, n_way)[y]
    dof = max(1, (len(y) - n_way) * flat.shape[1])
    var = float((resid**2).sum().item()) / dof
    return 1.0 / (2.0 * var * flat.shape[1]) if var > 0 else 1.0 / flat.shape[1]


@dataclass(frozen=True)
class FloorCheck:
    """Held-out support accuracy of the adapted model, of the pixel centroid and, when the
    check scored it, of the model times the pixels (``fused_acc``)."""

    model_acc: float
    pixel_acc: float
    folds: int
    held_out: int  # images scored, over all folds
    fused_acc: float | None = None

    @property
    def choice(self) -> str:
        """``model``, ``fused`` or ``pixels``: the most accurate on the held-out images, ties
        going to the model, then to the fused one."""
        best = "model"
        if self.fused_acc is not None and self.fused_acc > self.model_acc:
            best = "fused"
        top = self.model_acc if best == "model" else float(self.fused_acc or 0.0)
        return "pixels" if self.pixel_acc > top else best

    @property
    def use_pixels(self) -> bool:
        """Ship the pixel centroid: it was strictly more accurate on the held-out images."""
        return self.choice == "pixels"

    def to_json(self) -> dict[str, Any]:
        """JSON form (metrics.json ``floors.check``)."""
        return {**asdict(self), "use_pixels": self.use_pixels, "choice": self.choice}


def check_pixel_floor(
    supernet: Supernet,
    encode: Encode,
    x: Tensor,
    y: Tensor,
    n_way: int,
    inner: InnerConfig,
    folds: int = FLOOR_FOLDS,
    stop_early: bool = True,
    pixel_expert: float = 0.0,
    also_fused: float = 0.0,
) -> FloorCheck | None:
    """Adapted subnet vs pixel centroid on up to ``folds`` leave-one-per-class-out splits of
    the support set, the subnet adapted exactly as the final model is (``inner``). None with
    one shot per class: nothing can be held out.

    The pixel centroid (no training) is scored on every fold first; the subnet is then
    adapted fold by fold and the check stops as soon as the verdict cannot change: when the
    model's hits already reach the pixels' total, or when it could not reach it even by
    getting every image left right. The verdict is the one all folds would give; the figures
    cover the folds adapted (``folds``, ``held_out``). ``stop_early=False`` adapts every fold
    (what benchmarks time it against). With ``pixel_expert`` > 0 the model scored is the one a
    search job then ships: the subnet's and the pixels' experts multiplied
    (:func:`fused_log_probs`, fitted on the fold's own support images). With ``also_fused``
    > 0 (and no ``pixel_expert``) the check scores that product too, from the same adapted
    weights, on every fold, and :attr:`FloorCheck.choice` picks among the three.
    """
    if min(int((y == c).sum().item()) for c in range(n_way)) < 2:
        return None
    third = also_fused if pixel_expert <= 0 else 0.0
    splits = support_splits(x, y, n_way, folds=folds)
    sizes = [len(s.hy) for s in splits]
    pixel = [
        round(pixel_centroid_acc(s.x, s.y, s.hx, s.hy, n_way) * k)
        for s, k in zip(splits, sizes, strict=True)
    ]
    pixel_total = sum(pixel)
    model_hits, fused_hits, used = 0, 0, 0
    for s in splits:
        w = adapt_encode(supernet, encode, s.x, s.y, n_way, inner)
        with torch.no_grad():
            out = logits(s.hx, encode, w)
        if pixel_expert > 0:
            model_hits += _hits(fused_log_probs(out, s.x, s.y, s.hx, n_way, pixel_expert), s.hy)
        else:
            model_hits += _hits(out, s.hy)
        if third > 0:
            fused_hits += _hits(fused_log_probs(out, s.x, s.y, s.hx, n_way, third), s.hy)
        used += 1
        left = sum(sizes[used:])
        done = model_hits >= pixel_total or model_hits + left < pixel_total
        if stop_early and third <= 0 and done:
            break
    n = sum(sizes[:used])
    fused = fused_hits / n if third > 0 else None
    return FloorCheck(model_hits / n, sum(pixel[:used]) / n, used, n, fused)


def _hits(scores: Tensor, hy: Tensor) -> int:
    return int((scores.argmax(1) == hy).sum().item())


def centroid_spread_scale(x: Tensor, y: Tensor, n_way: int) -> float:
    """``1 / mean |mean_j - mean_k|^2`` over pairs of classes of (x, y), flattened.

    It needs no within-class spread, so it exists at one shot: the pixel classifier's logits
    ``-scale * |x - mean_c|^2`` then differ by about 1 between a class mean and another.
    """
    means = class_means(x.flatten(1), y, n_way)
    d2 = torch.cdist(means, means) ** 2
    pairs = n_way * (n_way - 1)
    mean = float(d2.sum().item()) / pairs if pairs else 0.0
    return 1.0 / mean if mean > 0 else 1.0


def fused_log_probs(
    model_logits: Tensor, x: Tensor, y: Tensor, hx: Tensor, n_way: int, weight: float
) -> Tensor:
    """A product of two experts: the model's log-probabilities plus ``weight`` times those of
    nearest centroid on pixels (logits scaled by :func:`centroid_spread_scale`). (H, N)."""
    pix = centroid_scores(x.flatten(1), y, hx.flatten(1), n_way) * centroid_spread_scale(
        x, y, n_way
    )
    return torch.log_softmax(model_logits, 1) + weight * torch.log_softmax(pix, 1)


def fused_acc(
    model_logits: Tensor, x: Tensor, y: Tensor, hx: Tensor, hy: Tensor, n_way: int, weight: float
) -> float:
    """Accuracy on (hx, hy) of :func:`fused_log_probs`."""
    return accuracy(fused_log_probs(model_logits, x, y, hx, n_way, weight), hy)
