"""Small PNG previews of a stored dataset's images (the dashboard shows a few per class).

The zip was checked when it was uploaded (``service.zipcheck``: entry count, image sizes and
dimensions), so an image read here is bounded. The class index of a zip (its central directory
walked once) is cached for the last few datasets: a page asks for several images in a row.

Example:
    >>> png = thumbnail(Path("data.zip"), "Latin/character01", 0, size=64)  # doctest: +SKIP
    >>> png[:8] == b"\\x89PNG\\r\\n\\x1a\\n"                                # doctest: +SKIP
    True
"""

from __future__ import annotations

import functools
import io
from pathlib import Path

from PIL import Image

from service.errors import NotFound
from service.ids import shown
from service.layout import scan_layout
from service.zipdir import Entry, find_directory, iter_entries, open_member

# Zips whose class index stays in memory (a class index is a small tuple per image).
_CACHED_ZIPS = 2


def thumbnail(zip_path: Path, class_name: str, index: int, size: int = 64) -> bytes:
    """The ``index``-th image of ``class_name`` (support images of a task dataset), shrunk to
    fit ``size`` x ``size``, as PNG bytes.

    :class:`NotFound` (naming what exists) for an unknown class or an index past its images.
    """
    stat = zip_path.stat()
    classes = _class_index(str(zip_path), stat.st_mtime_ns, stat.st_size)
    entries = classes.get(class_name)
    if entries is None:
        raise NotFound(f"the dataset has no class {shown(class_name)}")
    if not 0 <= index < len(entries):
        raise NotFound(
            f"class {shown(class_name)} has {len(entries)} images: i must be in "
            f"0..{len(entries) - 1}"
        )
    entry = entries[index]
    with zip_path.open("rb") as fh, open_member(fh, entry) as member:
        data = member.read(entry.file_size + 1)
    with Image.open(io.BytesIO(data)) as img:
        img.draft("RGB", (size, size))  # JPEG: decode at a reduced scale when it can
        img.thumbnail((size, size))
        out = img.convert("L" if img.mode in ("1", "L", "I;16", "I") else "RGB")
    buf = io.BytesIO()
    out.save(buf, format="PNG")
    return buf.getvalue()


@functools.lru_cache(maxsize=_CACHED_ZIPS)
def _class_index(path: str, mtime_ns: int, size: int) -> dict[str, list[Entry]]:
    """Class -> its image entries in layout order; cached by path, mtime and size."""
    del mtime_ns, size  # part of the cache key only: a replaced file is read again
    with open(path, "rb") as fh:
        by_name = {e.name: e for e in iter_entries(fh, find_directory(fh))}
    layout = scan_layout(by_name)
    return {c: [by_name[m] for m in ms if m in by_name] for c, ms in layout.members.items()}
