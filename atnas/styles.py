"""Task styles: one random image-formation change applied to a whole meta-training task.

Meta-trained on clean Omniglot strokes alone, the features discard what the pixels of other
kinds of images know (issue 6: 9-13 points under a nearest-centroid classifier on raw pixels on
a cross-domain set). With ``MetaTrainConfig.task_styles = p``, a share ``p`` of the
meta-training tasks are drawn in one random *style*, the same for their support and query
images, so the inner loop learns to adapt to the style as well as to the classes.

The family holds two generic changes of how an image is formed, and on purpose not the shifts
that the benchmarks evaluate as unseen (polarity, stroke width, noise, image size;
``benchmarks/domains.py``):

- ``lowres``: the image seen at a lower resolution (area-averaged down to ``side`` pixels,
  then bilinearly back up): blurred strokes, lost detail;
- ``ink``: fainter and re-curved ink (``1 - ink * (1 - x) ** gamma``): grey levels that
  Omniglot's near-binary images never show.

Images are float (B, C, H, W) in [0, 1], dark ink on white, as :class:`atnas.tasks.Task`'s.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from atnas.tasks import Task

__all__ = ["LOWRES_SIDES", "Style", "apply_style", "draw_style", "restyle"]

#: Sides (pixels) the ``lowres`` change averages down to, drawn uniformly.
LOWRES_SIDES = (7, 16)
#: Ranges of the ``ink`` change: ink strength and gamma (its log is drawn uniformly).
INK_RANGE = (0.4, 1.0)
GAMMA_RANGE = (0.5, 2.0)


@dataclass(frozen=True)
class Style:
    """One task's style: a lower resolution, an ink change, or both (``None``: not applied)."""

    side: int | None = None
    ink: float | None = None
    gamma: float | None = None


def draw_style(rng: np.random.Generator) -> Style:
    """A random style: ``lowres``, ``ink`` or both, each a third of the time.

    >>> s = draw_style(np.random.default_rng(0))
    >>> s.side is not None or s.ink is not None
    True
    """
    kind = int(rng.integers(3))  # 0: lowres, 1: ink, 2: both
    side = ink = gamma = None
    if kind in (0, 2):
        side = int(rng.integers(LOWRES_SIDES[0], LOWRES_SIDES[1] + 1))
    if kind in (1, 2):
        ink = float(rng.uniform(*INK_RANGE))
        gamma = float(np.exp(rng.uniform(np.log(GAMMA_RANGE[0]), np.log(GAMMA_RANGE[1]))))
    return Style(side, ink, gamma)


def apply_style(x: Tensor, style: Style) -> Tensor:
    """``x`` (B, C, H, W) in [0, 1] drawn in ``style``; same shape, still in [0, 1]."""
    if style.side is not None and style.side < min(x.shape[-2:]):
        small = F.adaptive_avg_pool2d(x, style.side)
        x = F.interpolate(small, size=x.shape[-2:], mode="bilinear", align_corners=False)
    if style.ink is not None and style.gamma is not None:
        x = 1.0 - style.ink * (1.0 - x).clamp(0, 1).pow(style.gamma)
    return x.clamp(0, 1)


def restyle(task: Task, rng: np.random.Generator) -> tuple[Task, Style]:
    """``task`` with one random style applied to its support and query images alike."""
    style = draw_style(rng)
    with torch.no_grad():
        sx, qx = apply_style(task.support_x, style), apply_style(task.query_x, style)
    return Task(sx, task.support_y, qx, task.query_y, task.classes), style
