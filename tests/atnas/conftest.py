"""Fixtures of the atnas tests: tiny spaces, synthetic image sets, image files, Omniglot."""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from atnas.data import ImageSet, TaskData
from atnas.learner import InnerConfig
from atnas.metatrain import Member, MetaState, MetaTrainConfig
from atnas.search import SearchConfig
from atnas.space import SearchSpace
from atnas.supernet import Supernet
from atnas.tasks import Task

REPO_ROOT = Path(__file__).resolve().parents[2]


def datasets_root() -> Path:
    """``$ATNAS_DATASETS`` when set, else ``../shared/datasets`` beside the repository."""
    env = os.environ.get("ATNAS_DATASETS")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "datasets"


@pytest.fixture(scope="session")
def omniglot_zip() -> Path:
    """The Omniglot background zip, or a skip that says where it was looked for."""
    path = datasets_root() / "omniglot" / "images_background.zip"
    if not path.is_file():
        pytest.skip(f"Omniglot not found at {path} (set ATNAS_DATASETS to its parent folder)")
    return path


# ---------------------------------------------------------------------------------------------
# Synthetic data in memory


def synthetic_images(
    n_classes: int = 6,
    per_class: int = 6,
    size: int = 8,
    channels: int = 1,
    seed: int = 0,
    groups: list[str] | None = None,
    noise: float = 0.15,
) -> ImageSet:
    """Classes of noisy copies of a random binary prototype each: learnable in a few steps."""
    rng = np.random.default_rng(seed)
    images, index = [], []
    for k in range(n_classes):
        proto = rng.random((channels, size, size)) < 0.5
        for _ in range(per_class):
            flip = rng.random((channels, size, size)) < noise
            images.append(np.where(proto ^ flip, 255, 0).astype(np.uint8))
        index.append(np.arange(k * per_class, (k + 1) * per_class))
    names = [f"g{k % 3}/c{k:02d}" for k in range(n_classes)]
    return ImageSet(
        names=names,
        groups=groups or [n.split("/")[0] for n in names],
        images=np.stack(images),
        class_index=index,
    )


def synthetic_task(
    way: int = 3, shot: int = 3, query: int = 4, size: int = 8, seed: int = 0
) -> TaskData:
    """A task whose support and query images come from the same class prototypes."""
    full = synthetic_images(way, shot + query, size=size, seed=seed)
    support = ImageSet(
        full.names,
        full.groups,
        np.concatenate([full.images[ix[:shot]] for ix in full.class_index]),
        [np.arange(k * shot, (k + 1) * shot) for k in range(way)],
    )
    q = ImageSet(
        full.names,
        full.groups,
        np.concatenate([full.images[ix[shot:]] for ix in full.class_index]),
        [np.arange(k * query, (k + 1) * query) for k in range(way)],
    )
    return TaskData(support, q)


TINY_SPACE = SearchSpace(num_layers=3, widths=(8, 16))
TINY_INNER = InnerConfig(steps=2, lr=0.2)
TINY_SEARCH = SearchConfig(
    population=4,
    generations=2,
    seed_top=2,
    inner=TINY_INNER,
    final_inner=InnerConfig(steps=3, lr=0.2),
    folds=2,
    pixel_fallback=False,  # these tests look at the subnet (the fallback: test_fallback.py)
    pixel_expert=0.0,  # (the pixels multiplied in: test_pixel_expert.py)
    views=2,
)


@pytest.fixture
def tiny_space() -> SearchSpace:
    """A 3-layer space of every op at widths 8 and 16."""
    return TINY_SPACE


def tiny_state(space: SearchSpace = TINY_SPACE, n_members: int = 4, seed: int = 0) -> MetaState:
    """An untrained meta-state: a fresh supernet and a scored population of random encodes."""
    from atnas.evolution import random_encode

    rng = np.random.default_rng(seed)
    members: list[Member] = []
    while len(members) < n_members:
        e = random_encode(space, rng)
        if all(m.encode != e for m in members):
            members.append(Member(e, 1.0 - 0.1 * len(members)))
    cfg = MetaTrainConfig(image_size=8, iterations=1, budget_seconds=None, inner=TINY_INNER)
    return MetaState(space, cfg, Supernet(space, seed=seed), members)


# ---------------------------------------------------------------------------------------------
# Image files on disk


def image_bytes(seed: int, size: int = 10, mode: str = "L", fmt: str = "PNG") -> bytes:
    """A small image (grey or RGB) whose pixels depend on ``seed``."""
    rng = np.random.default_rng(seed)
    shape = (size, size) if mode == "L" else (size, size, 3)
    img = Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode=mode)
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def class_files(classes: Mapping[str, int], prefix: str = "", **kw: object) -> dict[str, bytes]:
    """``{prefix}{class}/{i}.png`` members for a class-folder dataset."""
    out = {}
    for k, (name, n) in enumerate(classes.items()):
        for i in range(n):
            out[f"{prefix}{name}/{i}.png"] = image_bytes(k * 97 + i, **kw)  # type: ignore[arg-type]
    return out


def write_folder(root: Path, files: Mapping[str, bytes]) -> Path:
    """Writes ``files`` (relative path -> bytes) under ``root``."""
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


def write_zip(path: Path, files: Mapping[str, bytes]) -> Path:
    """Writes ``files`` into a zip at ``path``."""
    with zipfile.ZipFile(path, "w") as zf:
        for rel, data in files.items():
            zf.writestr(rel, data)
    return path


def tiny_meta_task(seed: int = 0) -> Task:
    """A 3-way task of 6x6 random images, 2 support and 2 query images per class."""
    gen = torch.Generator().manual_seed(seed)
    return Task(
        torch.rand(6, 1, 6, 6, generator=gen),
        torch.tensor([0, 1, 2, 0, 1, 2]),
        torch.rand(6, 1, 6, 6, generator=gen),
        torch.tensor([2, 1, 0, 0, 1, 2]),
        ["a", "b", "c"],
    )
