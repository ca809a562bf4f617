"""Two floors that an adapted model must beat, scored on the same hold-out splits as fitness.

- ``pixel_centroid``: nearest class mean on raw pixels (no network at all);
- ``feature_prototype``: nearest class prototype on the subnet's inherited features, with no
  gradient step (what the meta-trained features give for free).

If the adapted model is not above both, fine-tuning (or the whole supernet) is not worth
deploying for that task; a search job reports all three side by side.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from atnas.fitness import Split
from atnas.space import Encode
from atnas.supernet import Supernet, features


def centroid_scores(x: Tensor, y: Tensor, hx: Tensor, n_way: int) -> Tensor:
    """Negative squared distances of ``hx`` rows to the class means of (x, y). (B, D) -> (H, N)."""
    onehot = F.one_hot(y, n_way).to(x.dtype)  # (B, N)
    means = (onehot.t() @ x) / onehot.sum(0).clamp_min(1.0).unsqueeze(1)  # (N, D)
    return -(torch.cdist(hx, means) ** 2)


def _acc(scores: Tensor, hy: Tensor) -> float:
    return float((scores.argmax(1) == hy).float().mean().item())


@torch.no_grad()
def pixel_centroid_acc(x: Tensor, y: Tensor, hx: Tensor, hy: Tensor, n_way: int) -> float:
    """Accuracy on (hx, hy) of nearest-centroid on flattened pixels of (x, y)."""
    return _acc(centroid_scores(x.flatten(1), y, hx.flatten(1), n_way), hy)


@torch.no_grad()
def feature_prototype_acc(
    supernet: Supernet, encode: Encode, x: Tensor, y: Tensor, hx: Tensor, hy: Tensor, n_way: int
) -> float:
    """Accuracy on (hx, hy) of nearest-prototype on ``encode``'s inherited features."""
    w = supernet.weights(encode)
    return _acc(centroid_scores(features(x, encode, w), y, features(hx, encode, w), n_way), hy)


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
