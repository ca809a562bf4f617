"""The class-folder layout of a dataset zip, read from its member names alone (no decoding).

The rules (``atnas.data`` applies the same ones when it reads the images):

- A *class* is a leaf folder that directly holds image files (``.png``, ``.jpg``, ``.jpeg``,
  any case). ``__MACOSX/``, hidden files and dot-folders are ignored; so is an image at the root.
- If every image sits under one single top-level folder (like ``images_background/``), that
  wrapper is stripped: it is not a group. (A lone ``support/`` folder is not a wrapper.)
- A class's name is its folder path below the (stripped) root, ``/``-separated
  (``Latin/character01``); its *group* is the first component (a root class is its own group).
- A *task* dataset has top-level folders ``support/`` (required) and optionally ``query/``; its
  classes are the leaf folders under ``support/`` named relative to it, and query classes must
  be a subset of the support classes. Anything else is a *classes* dataset.

Example:
    >>> scan_layout(["bg/Latin/a/1.png", "bg/Latin/b/1.png", "bg/Greek/c/1.png"]).classes
    ['Greek/c', 'Latin/a', 'Latin/b']
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from service.errors import InvalidDataset, InvalidSpec
from service.ids import shown

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg"})


@dataclass(frozen=True)
class Layout:
    """Classes of a dataset zip and the member names of their images.

    ``members[c]`` lists the zip member names (as stored, wrapper included) of class ``c``;
    for a task dataset these are the support images and ``query_members`` the query images.
    """

    kind: Literal["classes", "task"]
    members: dict[str, list[str]]
    query_members: dict[str, list[str]] | None = None

    @property
    def classes(self) -> list[str]:
        """Class names, sorted."""
        return sorted(self.members)

    @property
    def counts(self) -> dict[str, int]:
        """Images per class."""
        return {c: len(self.members[c]) for c in self.classes}

    @property
    def query_counts(self) -> dict[str, int] | None:
        """Images per query class (task datasets with a ``query/`` folder), else None."""
        if self.query_members is None:
            return None
        return {c: len(m) for c, m in sorted(self.query_members.items())}

    @property
    def groups(self) -> list[str]:
        """Distinct groups, sorted."""
        return sorted({group_of(c) for c in self.members})

    def all_members(self) -> list[str]:
        """Every image member name, support and query alike."""
        out = [m for ms in self.members.values() for m in ms]
        for ms in (self.query_members or {}).values():
            out.extend(ms)
        return out


def group_of(class_name: str) -> str:
    """The group of a class: the first component of its name."""
    return class_name.split("/", 1)[0]


def image_members(names: Iterable[str]) -> list[str]:
    """The image files among zip member names, minus junk (``__MACOSX``, hidden entries), as
    ``/``-separated paths without empty or ``.`` components (a normal name is kept as is).

    An absolute name or one with a ``..`` component is an :class:`InvalidDataset` naming it.
    Plain strings, not ``PurePosixPath``: a quarter of the memory and time at 250,000 entries.
    """
    keep = []
    for name in names:
        parts = name.split("/")
        if name.startswith("/") or ".." in parts:
            raise InvalidDataset(
                f"unsafe entry name {shown(name)}: absolute paths and '..' are not allowed"
            )
        if name.endswith("/"):
            continue
        if "" in parts or "." in parts:  # 'a//b', './a': written as PurePosixPath would
            parts = [part for part in parts if part not in ("", ".")]
            name = "/".join(parts)
            if not parts:
                continue
        if name.startswith(".") or "/." in name or "__MACOSX" in parts:
            continue
        last = parts[-1]
        dot = last.rfind(".")
        if 0 < dot < len(last) - 1 and last[dot:].lower() in IMAGE_SUFFIXES:
            keep.append(name)
    return keep


def strip_wrapper(paths: list[str]) -> tuple[str, list[str]]:
    """Removes one single top-level folder that wraps every image; returns (prefix, paths).

    A lone ``support/`` folder is not a wrapper: it is a task without a ``query/`` folder.
    """
    tops = {p.partition("/")[0] for p in paths}
    if len(tops) == 1 and tops != {"support"} and all(p.count("/") >= 2 for p in paths):
        top = next(iter(tops))
        return top + "/", [p[len(top) + 1 :] for p in paths]
    return "", paths


def leaf_classes(paths: Sequence[str], prefix: str) -> dict[str, list[str]]:
    """Maps each leaf class folder of ``paths`` to the member names (``prefix`` + path)."""
    classes: dict[str, list[str]] = {}
    for p in paths:
        folder, sep, _ = p.rpartition("/")
        if not sep:
            continue  # an image at the root belongs to no class
        classes.setdefault(folder, []).append(prefix + p)
    # A folder holding images *and* sub-folders of images is not a leaf: its images are ignored.
    # Linear in the entries: collect every folder's ancestors once, instead of comparing pairs
    # (and stop climbing at an ancestor already collected: its own ancestors are there too).
    inner: set[str] = set()
    for folder in classes:
        head, sep, _ = folder.rpartition("/")
        while sep and head not in inner:
            inner.add(head)
            head, sep, _ = head.rpartition("/")
    return {folder: sorted(members) for folder, members in classes.items() if folder not in inner}


def is_task(paths: Sequence[str]) -> bool:
    """True when the (stripped) top-level folders are ``support`` and optionally ``query``."""
    tops = {p.partition("/")[0] for p in paths if "/" in p}
    return "support" in tops and tops <= {"support", "query"}


def scan_layout(names: Iterable[str]) -> Layout:
    """The layout of a zip from its member names; :class:`InvalidDataset` when it has no class."""
    paths = image_members(names)
    if not paths:
        raise InvalidDataset("the archive holds no PNG or JPEG images")
    prefix, paths = strip_wrapper(paths)
    if not is_task(paths):
        members = leaf_classes(paths, prefix)
        if not members:
            raise InvalidDataset(
                "no class folders with images: put each class's images in its own folder "
                "(e.g. cat/1.png, dog/1.png or Alphabet/character01/1.png)"
            )
        return Layout(kind="classes", members=members)
    split: dict[str, list[str]] = {"support": [], "query": []}
    for p in paths:
        top, sep, rest = p.partition("/")
        if not sep:
            raise InvalidDataset(
                f"{prefix}{p} is outside support/ and query/ (task layout expected)"
            )
        split[top].append(rest)
    support = leaf_classes(split["support"], prefix + "support/")
    if not support:
        raise InvalidDataset("support/ holds no class folders with images")
    query = leaf_classes(split["query"], prefix + "query/") if split["query"] else None
    if query is not None:
        extra = sorted(set(query) - set(support))
        if extra:
            raise InvalidDataset(f"query classes {extra} are not in support/")
    return Layout(kind="task", members=support, query_members=query or None)


def select_classes(
    classes: Sequence[str], include: Sequence[str] | None, exclude: Sequence[str] | None
) -> list[str]:
    """The classes whose group is in ``include`` (all when None) and not in ``exclude``.

    Unknown group names are an :class:`InvalidSpec` naming them (a typo would otherwise
    silently select nothing); so is a selection that leaves no class.
    """
    known = {group_of(c) for c in classes}
    for label, chosen in (("include", include), ("exclude", exclude)):
        unknown = sorted(set(chosen or ()) - known)
        if unknown:
            raise InvalidSpec(f"{label}: unknown group(s) {unknown}; groups are {sorted(known)}")
    keep = [
        c
        for c in classes
        if (include is None or group_of(c) in include)
        and (exclude is None or group_of(c) not in exclude)
    ]
    if not keep:
        raise InvalidSpec("the include/exclude selection leaves no class")
    return keep
