"""Shifted domains for the benchmarks (issue 6, F): tasks where adaptation should pay.

Two kinds:

- :func:`shifted` changes an Omniglot task's images, support and query alike: ``inverted``
  polarity, Gaussian ``noise``, ``thick`` or ``thin`` strokes, 56 px images (``px56``);
- :func:`digits_images` is a cross-domain set: scikit-learn's bundled 8x8 handwritten digits
  (1,797 images of 10 classes, no download), drawn like Omniglot (dark ink on white) at the
  meta-training image size, for 5-way tasks from classes no net ever saw.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from atnas.data import ImageSet
from atnas.tasks import Task

SHIFTS = ("inverted", "noise", "thick", "thin", "px56")
DOMAINS = (*SHIFTS, "digits")


def shifted(task: Task, domain: str | None, gen: torch.Generator) -> Task:
    """The task with a domain shift applied to support and query alike (None: unchanged)."""
    if domain is None:
        return task

    def f(x: torch.Tensor) -> torch.Tensor:
        if domain == "inverted":
            return 1.0 - x
        if domain == "noise":
            return (x + 0.3 * torch.randn(x.shape, generator=gen)).clamp(0, 1)
        if domain == "thick":  # strokes are dark: a min-filter widens them
            return -F.max_pool2d(-x, 3, stride=1, padding=1)
        if domain == "thin":
            return F.max_pool2d(x, 3, stride=1, padding=1)
        if domain == "px56":
            return F.interpolate(x, size=56, mode="bilinear", align_corners=False)
        raise ValueError(f"unknown domain shift {domain!r}; known: {SHIFTS}")

    return Task(f(task.support_x), task.support_y, f(task.query_x), task.query_y, task.classes)


def digits_images(size: int = 28) -> ImageSet:
    """scikit-learn's 8x8 digits as an :class:`ImageSet` of 10 classes, ``size`` px, 1 channel.

    The digits are light ink (0-16) on black; Omniglot is dark ink on white, so they are
    inverted, then scaled up bilinearly.
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError:  # a dev dependency: say how to get it
        raise SystemExit("the digits domain needs scikit-learn: pip install -e '.[dev]'") from None
    bunch = load_digits()
    ink = torch.as_tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0  # (N, 1, 8, 8)
    big = F.interpolate(ink, size=size, mode="bilinear", align_corners=False).clamp(0, 1)
    images = ((1.0 - big) * 255.0).round().to(torch.uint8).numpy()
    target = np.asarray(bunch.target)
    classes = sorted(int(c) for c in np.unique(target))
    return ImageSet(
        names=[f"digit_{c}" for c in classes],
        groups=["digits"] * len(classes),
        images=images,
        class_index=[np.flatnonzero(target == c) for c in classes],
    )
