"""Reading images in the class-folder layout, from a folder or a zip, into memory.

A class is a *leaf folder* that directly holds image files (PNG/JPEG), at any depth. When every
entry sits under one single top-level folder (like ``images_background/``), that wrapper is not
a group and is stripped. A class's name is its folder path below the root (``Latin/character01``)
and its *group* is the first component of that path (a class at the root is its own group).
A *task* dataset has top-level folders ``support/`` (required) and ``query/`` (optional).

Images are resized to ``image_size``, converted to 1 or 3 channels, and kept as uint8; tasks
turn them into floats in [0, 1], which is also the input range of exported models.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image, UnidentifiedImageError

from atnas.errors import DatasetError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg"})


@dataclass(frozen=True)
class ImageConfig:
    """How images are decoded: square side in pixels and channel count (1 or 3).

    ``max_pixels`` (width x height in an image's header) and ``max_bytes`` (one file) bound
    what is decoded at all: a dataset stored before uploads were checked, or a folder on disk,
    cannot make a worker allocate for a 100000 x 100000 image. The defaults are the API's
    (``ATNAS_MAX_IMAGE_PIXELS``, ``ATNAS_MAX_IMAGE_BYTES``).
    """

    image_size: int = 28
    channels: int = 1
    max_pixels: int = 4096 * 4096
    max_bytes: int = 32 * 1024 * 1024

    def __post_init__(self) -> None:
        if not 4 <= self.image_size <= 512:
            raise DatasetError(f"image_size must be in 4..512, got {self.image_size}")
        if self.channels not in (1, 3):
            raise DatasetError(f"channels must be 1 or 3, got {self.channels}")
        if self.max_pixels < 1 or self.max_bytes < 1:
            raise DatasetError("max_pixels and max_bytes must be at least 1")


def select_groups(
    groups: Sequence[str], include: Sequence[str] | None, exclude: Sequence[str] | None
) -> list[int]:
    """Positions of the classes whose group passes ``include``/``exclude``.

    Unknown group names are an error (a typo would otherwise silently select nothing).
    """
    known = set(groups)
    for label, chosen in (("include", include), ("exclude", exclude)):
        unknown = sorted(set(chosen or ()) - known)
        if unknown:
            raise DatasetError(f"{label}: unknown group(s) {unknown}; groups are {sorted(known)}")
    keep = [
        k
        for k, g in enumerate(groups)
        if (include is None or g in include) and (exclude is None or g not in exclude)
    ]
    if not keep:
        raise DatasetError("the include/exclude selection leaves no class")
    return keep


@dataclass
class ImageSet:
    """Images of labelled classes in memory.

    ``images`` is uint8 (N, C, H, W); ``class_index[k]`` lists the rows of class ``k``.
    """

    names: list[str]
    groups: list[str]
    images: np.ndarray
    class_index: list[np.ndarray]

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.names)

    def counts(self) -> dict[str, int]:
        """Images per class name."""
        return {n: len(ix) for n, ix in zip(self.names, self.class_index, strict=True)}

    def select(
        self, include: Sequence[str] | None = None, exclude: Sequence[str] | None = None
    ) -> ImageSet:
        """The classes whose group is in ``include`` (all when None) and not in ``exclude``."""
        return self._subset(select_groups(self.groups, include, exclude))

    def split(self, fraction: float, seed: int) -> tuple[ImageSet, ImageSet]:
        """Splits the classes at random: (the rest, a ``fraction`` held out), both non-empty."""
        if not 0.0 < fraction < 1.0 or self.num_classes < 2:
            raise DatasetError(f"cannot hold out {fraction:.0%} of {self.num_classes} classes")
        order = np.random.default_rng(seed).permutation(self.num_classes)
        n_held = min(max(1, round(fraction * self.num_classes)), self.num_classes - 1)
        return self._subset(sorted(order[n_held:])), self._subset(sorted(order[:n_held]))

    def _subset(self, keep: Sequence[int]) -> ImageSet:
        rows = np.concatenate([self.class_index[k] for k in keep])
        remap = np.full(len(self.images), -1, dtype=np.int64)
        remap[rows] = np.arange(len(rows))
        return ImageSet(
            names=[self.names[k] for k in keep],
            groups=[self.groups[k] for k in keep],
            images=self.images[rows],
            class_index=[remap[self.class_index[k]] for k in keep],
        )

    def require_images(self, minimum: int) -> None:
        """Raises :class:`DatasetError` naming a class with fewer than ``minimum`` images."""
        for name, ix in zip(self.names, self.class_index, strict=True):
            if len(ix) < minimum:
                raise DatasetError(
                    f"class {name!r} has {len(ix)} image(s); at least {minimum} are needed"
                )


@dataclass
class TaskData:
    """A novel task: labelled support images and, optionally, query images for reporting."""

    support: ImageSet
    query: ImageSet | None


class _Source:
    """Uniform access to the files of a folder or a zip, by POSIX relative path."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._zip: zipfile.ZipFile | None = None
        if path.is_dir():
            self.files = sorted(
                p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()
            )
        elif path.is_file():
            try:
                self._zip = zipfile.ZipFile(path)
            except (zipfile.BadZipFile, OSError) as exc:
                raise DatasetError(f"{path}: not a readable zip archive ({exc})") from None
            self.files = sorted(n for n in self._zip.namelist() if not n.endswith("/"))
        else:
            raise DatasetError(f"{path}: no such folder or zip file")

    def read(self, rel: str, max_bytes: int) -> bytes:
        """The file's bytes; :class:`DatasetError` when it is larger than ``max_bytes``."""
        if self._zip is not None:
            size = self._zip.getinfo(rel).file_size  # zipfile never inflates past it
        else:
            size = (self.path / rel).stat().st_size
        if size > max_bytes:
            raise DatasetError(f"{self.path}:{rel}: {size} bytes, over the limit of {max_bytes}")
        if self._zip is not None:
            return self._zip.read(rel)
        return (self.path / rel).read_bytes()

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()


def _image_paths(files: Sequence[str]) -> list[PurePosixPath]:
    keep = []
    for f in files:
        p = PurePosixPath(f)
        if any(part.startswith(".") or part == "__MACOSX" for part in p.parts):
            continue
        if p.suffix.lower() in IMAGE_SUFFIXES:
            keep.append(p)
    return keep


def _strip_wrapper(paths: list[PurePosixPath]) -> tuple[str, list[PurePosixPath]]:
    """Removes one single top-level folder that wraps everything; returns (prefix, paths)."""
    tops = {p.parts[0] for p in paths}
    # A lone support/ folder is a task without query/, not a wrapper.
    if len(tops) == 1 and tops != {"support"} and all(len(p.parts) > 2 for p in paths):
        top = next(iter(tops))
        return top + "/", [PurePosixPath(*p.parts[1:]) for p in paths]
    return "", paths


def _leaf_classes(paths: list[PurePosixPath]) -> dict[str, list[int]]:
    """Maps each leaf class folder to the positions of its images in ``paths``."""
    classes: dict[str, list[int]] = {}
    for i, p in enumerate(paths):
        if len(p.parts) < 2:
            continue  # an image at the root belongs to no class
        classes.setdefault(str(p.parent), []).append(i)
    # A folder holding images *and* sub-folders of images is not a leaf: its images are ignored.
    # (Every folder's ancestors collected once: linear in the images, not quadratic in folders.)
    not_leaf = {str(parent) for folder in classes for parent in PurePosixPath(folder).parents}
    return {folder: idx for folder, idx in classes.items() if folder not in not_leaf}


def decode_image(data: bytes, name: str, cfg: ImageConfig) -> np.ndarray:
    """One image file as a task's images are read: uint8 (C, H, W) at ``cfg``'s size and
    channels (a served model's inputs go through here too, to match its training).

    Raises :class:`DatasetError` naming ``name`` when it does not decode or is over
    ``cfg.max_pixels``. Divide by 255 for the model's input range [0, 1].
    """
    if len(data) > cfg.max_bytes:
        raise DatasetError(f"{name}: {len(data)} bytes, over the limit of {cfg.max_bytes}")
    return _decode(data, name, cfg)


def _decode(data: bytes, name: str, cfg: ImageConfig) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data)) as raw:
            # The header is read, the pixels not yet: refuse before convert() allocates them.
            # (A local check: PIL's global MAX_IMAGE_PIXELS is shared by the whole process.)
            width, height = raw.size
            if width * height > cfg.max_pixels:
                raise DatasetError(
                    f"{name}: {width}x{height} pixels, over the limit of {cfg.max_pixels}"
                )
            img = raw.convert("L" if cfg.channels == 1 else "RGB")
            img = img.resize((cfg.image_size, cfg.image_size), Image.Resampling.BILINEAR)
            arr = np.asarray(img, dtype=np.uint8)
    except Image.DecompressionBombError:
        cap = 2 * (Image.MAX_IMAGE_PIXELS or 0)
        raise DatasetError(
            f"{name}: more than {cap} pixels, over the limit of {cfg.max_pixels}"
        ) from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DatasetError(f"{name}: cannot decode image ({exc})") from None
    return arr[None] if cfg.channels == 1 else arr.transpose(2, 0, 1)  # (C, H, W)


def _load(
    source: _Source,
    prefix: str,
    paths: list[PurePosixPath],
    classes: dict[str, list[int]],
    cfg: ImageConfig,
) -> ImageSet:
    names = sorted(classes)
    images: list[np.ndarray] = []
    class_index: list[np.ndarray] = []
    for name in names:
        start = len(images)
        for i in classes[name]:
            rel = prefix + str(paths[i])
            images.append(_decode(source.read(rel, cfg.max_bytes), f"{source.path}:{rel}", cfg))
        class_index.append(np.arange(start, len(images)))
    groups = [n.split("/", 1)[0] for n in names]
    size = cfg.image_size
    stacked = np.stack(images) if images else np.zeros((0, cfg.channels, size, size), np.uint8)
    return ImageSet(names, groups, stacked, class_index)


def _scan(path: Path) -> tuple[_Source, str, list[PurePosixPath]]:
    source = _Source(path)
    paths = _image_paths(source.files)
    if not paths:
        source.close()
        raise DatasetError(f"{path}: no PNG or JPEG images found")
    prefix, paths = _strip_wrapper(paths)
    return source, prefix, paths


def is_task_layout(path: Path) -> bool:
    """True when ``path`` (folder or zip) has the ``support/`` (+ ``query/``) task layout."""
    source, _, paths = _scan(path)
    source.close()
    tops = {p.parts[0] for p in paths if len(p.parts) > 1}
    return "support" in tops and tops <= {"support", "query"}


def load_images(
    path: str | Path,
    cfg: ImageConfig = ImageConfig(),
    include: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
) -> ImageSet:
    """Reads a class-folder dataset (folder or zip), keeping the groups selected.

    Raises :class:`DatasetError` naming the file or class at fault.
    """
    source, prefix, paths = _scan(Path(path))
    try:
        classes = _leaf_classes(paths)
        if not classes:
            raise DatasetError(f"{path}: no class folders with images (a class is a leaf folder)")
        names = sorted(classes)
        keep = select_groups([n.split("/", 1)[0] for n in names], include, exclude)
        classes = {names[k]: classes[names[k]] for k in keep}
        return _load(source, prefix, paths, classes, cfg)
    finally:
        source.close()


def load_task(path: str | Path, cfg: ImageConfig = ImageConfig()) -> TaskData:
    """Reads a task dataset: ``support/<class>/*`` and optional ``query/<class>/*``."""
    source, prefix, paths = _scan(Path(path))
    try:
        parts: dict[str, list[PurePosixPath]] = {"support": [], "query": []}
        for p in paths:
            if len(p.parts) > 1 and p.parts[0] in parts:
                parts[p.parts[0]].append(p)
            else:
                raise DatasetError(
                    f"{path}: {prefix}{p} is outside support/ and query/ (task layout expected)"
                )
        sets: dict[str, ImageSet | None] = {}
        for split, ps in parts.items():
            inner = [PurePosixPath(*p.parts[1:]) for p in ps]
            classes = _leaf_classes(inner)
            if not classes:
                if split == "support":
                    raise DatasetError(f"{path}: support/ holds no class folders with images")
                sets[split] = None
                continue
            split_prefix = prefix + split + "/"
            sets[split] = _load(source, split_prefix, inner, classes, cfg)
        support, query = sets["support"], sets["query"]
        assert support is not None
        if support.num_classes < 2:
            raise DatasetError(f"{path}: a task needs at least 2 classes in support/")
        if query is not None:
            extra = sorted(set(query.names) - set(support.names))
            if extra:
                raise DatasetError(f"{path}: query classes {extra} are not in support/")
            query = _align(query, support.names)
        return TaskData(support, query)
    finally:
        source.close()


def _align(query: ImageSet, order: list[str]) -> ImageSet:
    """Query classes re-indexed to the support's class order (missing classes stay empty)."""
    pos = {n: k for k, n in enumerate(query.names)}
    empty = np.zeros(0, dtype=np.int64)
    return ImageSet(
        names=list(order),
        groups=[n.split("/", 1)[0] for n in order],
        images=query.images,
        class_index=[query.class_index[pos[n]] if n in pos else empty for n in order],
    )


def iter_groups(images: ImageSet) -> Iterator[tuple[str, int]]:
    """(group, number of classes) pairs, in first-seen order."""
    seen: dict[str, int] = {}
    for g in images.groups:
        seen[g] = seen.get(g, 0) + 1
    yield from seen.items()
