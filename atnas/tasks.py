"""Episodic N-way K-shot task sampling with an explicit seed, and simple augmentation."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from atnas.data import ImageSet
from atnas.errors import DatasetError


@dataclass
class Task:
    """One few-shot task. Images are float (B, C, H, W) in [0, 1]; labels are 0..N-1."""

    support_x: Tensor
    support_y: Tensor
    query_x: Tensor
    query_y: Tensor
    classes: list[str]

    @property
    def way(self) -> int:
        """Number of classes."""
        return len(self.classes)

    def to(self, device: torch.device) -> Task:
        """The task with its tensors on ``device``."""
        return Task(
            self.support_x.to(device),
            self.support_y.to(device),
            self.query_x.to(device),
            self.query_y.to(device),
            self.classes,
        )


def to_float(images: np.ndarray) -> Tensor:
    """uint8 (B, C, H, W) -> float32 in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).float().div_(255.0)


class TaskSampler:
    """Samples N-way K-shot tasks from an :class:`ImageSet`.

    With ``rotations`` each class also appears rotated by 90, 180 and 270 degrees as three new
    classes (the usual Omniglot practice). Every draw uses the caller's ``numpy`` Generator, so
    the same seed gives the same tasks.
    """

    def __init__(
        self, images: ImageSet, way: int, shot: int, query: int, rotations: bool = False
    ) -> None:
        if way < 2:
            raise DatasetError(f"way must be at least 2, got {way}")
        if shot < 1 or query < 1:
            raise DatasetError(f"shot and query must be at least 1, got {shot} and {query}")
        self.images = images
        self.way, self.shot, self.query = way, shot, query
        self.rotations = 4 if rotations else 1
        n_classes = images.num_classes * self.rotations
        if n_classes < way:
            raise DatasetError(
                f"{way}-way tasks need {way} classes; the selection has {n_classes}"
                + (" (rotations included)" if rotations else "")
            )
        images.require_images(shot + 1)

    @property
    def num_classes(self) -> int:
        """Classes available to tasks, rotated copies included."""
        return self.images.num_classes * self.rotations

    def sample(self, rng: np.random.Generator) -> Task:
        """One task: ``way`` classes, ``shot`` support and up to ``query`` query images each."""
        picks = rng.choice(self.num_classes, size=self.way, replace=False)
        sx, sy, qx, qy, names = [], [], [], [], []
        for label, c in enumerate(picks):
            base, rot = divmod(int(c), self.rotations)
            rows = self.images.class_index[base]
            n_query = min(self.query, len(rows) - self.shot)
            chosen = rows[rng.permutation(len(rows))[: self.shot + n_query]]
            imgs = self.images.images[chosen]
            if rot:
                imgs = np.rot90(imgs, k=rot, axes=(2, 3))
            sx.append(imgs[: self.shot])
            qx.append(imgs[self.shot :])
            sy += [label] * self.shot
            qy += [label] * n_query
            names.append(self.images.names[base] + (f"@rot{90 * rot}" if rot else ""))
        return Task(
            to_float(np.concatenate(sx)),
            torch.tensor(sy),
            to_float(np.concatenate(qx)),
            torch.tensor(qy),
            names,
        )


def augment(x: Tensor, gen: torch.Generator, strength: float = 1.0) -> Tensor:
    """Random small affine warps (rotation, scale, shift) of a batch; deterministic for ``gen``.

    Used to score 1-shot candidates from the support set alone. (B, C, H, W) -> same.
    """
    b = x.shape[0]
    u = torch.rand(b, 4, generator=gen) * 2 - 1  # uniform in [-1, 1]
    angle = u[:, 0] * math.radians(15) * strength
    scale = 1 + u[:, 1] * 0.1 * strength
    shift = u[:, 2:] * 0.1 * strength
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
    )
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    # Pad with the border so that white-background images stay white at the edges.
    return F.grid_sample(x, grid.to(x.device), padding_mode="border", align_corners=False)
