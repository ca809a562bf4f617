"""Checking an uploaded dataset zip within bounds, never decoding whole images into memory.

A zip of a few MB can declare a billion entries, a 1 GiB PNG chunk or a 100000x100000 image.
:func:`check_zip` refuses those from numbers it reads before the data they describe:

1. The central directory, walked entry by entry (:mod:`service.zipdir`; no ``ZipFile``, which
   would keep it all first): the number of entries, each entry's folder depth, each image's
   declared uncompressed size, and the sum of all declared sizes.
2. The class layout, from the names alone (:func:`service.layout.scan_layout`).
3. Each image of the layout (a second walk), opened from its record with zipfile's own inflater
   (:func:`service.zipdir.open_member`) and read through a :class:`BoundedReader` that stops
   past its declared size: the header is parsed, its width x height checked, and only then
   ``verify()`` (PNG chunk CRCs; pixel data is never decompressed).

Memory is bounded by the entry limit (the names) and one image's bytes, not by the upload:
``benchmarks/upload_memory.py`` measures it.

Example:
    >>> check_zip(Path("deep.zip"), UploadLimits(max_folder_depth=2))  # doctest: +SKIP
    Traceback (most recent call last):
    service.errors.InvalidDataset: 'a/b/c/1.png' is 3 folders deep, over the limit of 2 (ATNAS_...)
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, fields
from pathlib import Path
from typing import IO, Any, BinaryIO, cast

from PIL import Image

from service.errors import InvalidDataset, UploadTooLarge
from service.ids import shown
from service.layout import IMAGE_SUFFIXES, Layout, scan_layout
from service.settings import Settings
from service.zipdir import Directory, Entry, find_directory, iter_entries, open_member

# What a broken image can raise from PIL or the zip reader (CRC errors surface as BadZipFile,
# also where a directory entry understates the size: zipfile stops there, the CRC differs).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, zipfile.BadZipFile)
# Images are read back by the workers through zipfile; these two methods inflate with a bound
# on the output of each call (bzip2 and lzma do not: a few KB can inflate to GBs in one call).
_METHODS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED})
_ENCRYPTED = 0x1
_ONE_PIECE = 1024 * 1024


def _default(name: str) -> int:
    return cast(int, Settings.model_fields[name].default)


def env_var(limit: str) -> str:
    """The environment variable that sets a limit: ``env_var("max_folder_depth")`` is
    ``"ATNAS_MAX_FOLDER_DEPTH"``."""
    return f"{Settings.model_config.get('env_prefix', '')}{limit}".upper()


@dataclass(frozen=True)
class UploadLimits:
    """What one uploaded zip may hold; the defaults are :class:`Settings`' defaults.

    Example:
        >>> UploadLimits.from_settings(Settings(max_folder_depth=4)).max_folder_depth
        4
    """

    # Entries of any kind (folders and non-images included).
    max_upload_entries: int = _default("max_upload_entries")
    # Width x height of one image, from its header.
    max_image_pixels: int = _default("max_image_pixels")
    # Uncompressed bytes of one image entry.
    max_image_bytes: int = _default("max_image_bytes")
    # Uncompressed bytes of all entries together.
    max_uncompressed_bytes: int = _default("max_uncompressed_bytes")
    # Folders above an entry (slashes in its name): ``wrapper/group/class/x.png`` is 3.
    max_folder_depth: int = _default("max_folder_depth")

    @classmethod
    def from_settings(cls, settings: Settings) -> UploadLimits:
        """The limits of ``settings`` (the ``ATNAS_MAX_*`` variables)."""
        values: dict[str, Any] = {f.name: getattr(settings, f.name) for f in fields(cls)}
        return cls(**values)


def check_zip(path: Path, limits: UploadLimits | None = None) -> Layout:
    """The layout of the zip at ``path``, every limit and every image checked.

    Raises :class:`UploadTooLarge` (HTTP 413) for too many entries, bytes or pixels, and
    :class:`InvalidDataset` (HTTP 422) for anything else; the reason names the limit, the value
    found, its ``ATNAS_*`` variable and the entry at fault.
    """
    limits = limits or UploadLimits()
    try:
        fh = path.open("rb")
    except OSError:
        raise InvalidDataset("the upload is not a zip archive") from None
    # Two handles: one walks the directory while the other reads the images it names.
    with fh, path.open("rb") as data:
        try:
            directory = find_directory(fh)
            names = _check_directory(fh, directory, limits)
            layout = scan_layout(names)
            del names  # the layout keeps what it needs
            _check_images(fh, data, directory, set(layout.all_members()), limits)
        except zipfile.BadZipFile:  # of the directory; an image's own is named in its reason
            raise InvalidDataset("the upload is not a zip archive") from None
    return layout


def _check_directory(fh: BinaryIO, directory: Directory, limits: UploadLimits) -> list[str]:
    """Entry names, once count, depth, sizes and methods are within ``limits``."""
    if directory.count > limits.max_upload_entries:
        raise _too_many_entries(directory.count, limits)
    names: list[str] = []
    total = 0
    for entry in iter_entries(fh, directory):
        if len(names) == limits.max_upload_entries:  # the end record understated the count
            raise _too_many_entries(len(names) + 1, limits, at_least=True)
        name = entry.name
        depth = name.count("/")
        if depth > limits.max_folder_depth:
            raise InvalidDataset(
                f"{shown(name)} is {depth} folders deep, over the limit of "
                f"{limits.max_folder_depth} ({env_var('max_folder_depth')})"
            )
        if _is_image(name):
            _check_image_entry(name, entry.flags, entry.method, entry.file_size, limits)
        total += entry.file_size
        if total > limits.max_uncompressed_bytes:
            raise UploadTooLarge(
                f"the zip uncompresses to at least {total} bytes (counting up to "
                f"{shown(name)}), over the limit of {limits.max_uncompressed_bytes} "
                f"({env_var('max_uncompressed_bytes')})"
            )
        names.append(name)
    return names


def _check_images(
    fh: BinaryIO, data: BinaryIO, directory: Directory, wanted: set[str], limits: UploadLimits
) -> None:
    """Checks every entry of the directory that ``wanted`` names (a second walk)."""
    unseen = set(wanted)
    for entry in iter_entries(fh, directory):
        if entry.name in wanted:  # every copy of a repeated name: zipfile reads the last
            _check_image(data, entry, limits)
            unseen.discard(entry.name)
    if unseen:  # the layout must name entries exactly as the directory does
        raise InvalidDataset(f"{shown(min(unseen))}: no such entry in the zip's directory")


def _is_image(name: str) -> bool:
    dot = name.rfind(".")
    return dot > name.rfind("/") and name[dot:].lower() in IMAGE_SUFFIXES


def _check_image_entry(name: str, flags: int, method: int, size: int, limits: UploadLimits) -> None:
    # The layout writes 'a//b.png' as 'a/b.png', which zipfile could not open: refused by name.
    # (An absolute name is refused by the layout, with its own reason.)
    if not name.startswith("/") and ("//" in name or name.startswith("./") or "/./" in name):
        raise InvalidDataset(f"{shown(name)}: empty or '.' folder names are not allowed")
    if flags & _ENCRYPTED:
        raise InvalidDataset(f"{shown(name)} is encrypted; upload a zip without a password")
    if method not in _METHODS:
        raise InvalidDataset(
            f"{shown(name)} is compressed with zip method {method}; images must be stored or "
            "deflated (the default of zip tools)"
        )
    if size > limits.max_image_bytes:
        raise UploadTooLarge(
            f"{shown(name)} uncompresses to {size} bytes, over the limit of "
            f"{limits.max_image_bytes} for one image ({env_var('max_image_bytes')})"
        )


def _check_image(data: BinaryIO, entry: Entry, limits: UploadLimits) -> None:
    """Parses the header of image ``entry``, checks its pixels, then verifies it."""
    name = entry.name
    try:
        with open_member(data, entry) as raw:
            bounded = BoundedReader(raw, entry.file_size, name)
            # A small image is read in one piece: PIL's dozen small reads then cost nothing.
            fh = io.BytesIO(bounded.read()) if entry.file_size <= _ONE_PIECE else bounded
            with Image.open(cast(IO[bytes], fh)) as img:
                width, height = img.size
                if width * height > limits.max_image_pixels:
                    raise _too_many_pixels(name, f"is {width}x{height} = {width * height}", limits)
                img.verify()
    except Image.DecompressionBombError:
        # PIL refuses on its own past 2 x Image.MAX_IMAGE_PIXELS, before we see the size.
        cap = 2 * (Image.MAX_IMAGE_PIXELS or 0)
        raise _too_many_pixels(name, f"declares more than {cap}", limits) from None
    except _DECODE_ERRORS as exc:
        raise InvalidDataset(f"{name}: not a readable image ({exc})") from None


def _too_many_entries(count: int, limits: UploadLimits, at_least: bool = False) -> UploadTooLarge:
    found = f"at least {count}" if at_least else str(count)
    return UploadTooLarge(
        f"the zip has {found} entries, over the limit of {limits.max_upload_entries} "
        f"({env_var('max_upload_entries')})"
    )


def _too_many_pixels(name: str, found: str, limits: UploadLimits) -> UploadTooLarge:
    return UploadTooLarge(
        f"{shown(name)} {found} pixels, over the limit of {limits.max_image_pixels} "
        f"({env_var('max_image_pixels')})"
    )


class BoundedReader(io.RawIOBase):
    """Reads a zip member but never more than ``limit`` bytes of it: the size its entry
    declares. A reader that lets more come out (a lying header, a zip reader that trusts
    another field) is an :class:`InvalidDataset` naming ``name``.

    Example:
        >>> BoundedReader(io.BytesIO(b"12345"), 5, "a").read()
        b'12345'
        >>> BoundedReader(io.BytesIO(b"123456"), 5, "a").read()
        Traceback (most recent call last):
        ...
        service.errors.InvalidDataset: 'a' inflates to more than the 5 bytes its zip entry declares
    """

    def __init__(self, raw: IO[bytes] | io.BufferedIOBase, limit: int, name: str) -> None:
        super().__init__()
        self._raw = raw
        self.limit = limit
        self.name = name
        self.position = 0  # bytes of the member before the next read; past limit: a lie

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        room = self.limit - self.position + 1  # one byte past the limit proves a lie
        want = room if size is None or size < 0 else min(size, room)
        data = self._raw.read(want)
        self._advance(len(data))
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self.position = self._raw.seek(offset, whence)
        self._advance(0)
        return self.position

    def tell(self) -> int:
        return self.position

    def _advance(self, n: int) -> None:
        self.position += n
        if self.position > self.limit:
            raise InvalidDataset(
                f"{shown(self.name)} inflates to more than the {self.limit} bytes its zip "
                "entry declares"
            )
