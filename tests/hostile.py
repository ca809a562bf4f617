"""Hostile dataset zips, crafted small: a PNG with a huge chunk, a pixel bomb, a lying directory.

Used by the upload-limit tests and ``benchmarks/upload_memory.py``. Everything is written in
pieces of 1 MiB, so a 1 GiB chunk costs the writer no more memory than a small one.

Example:
    >>> len(pixel_bomb_png()) < 100
    True
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from typing import IO

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PIECE = bytes(1024 * 1024)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC of type and data."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _ihdr(width: int, height: int) -> bytes:
    # 8-bit greyscale, deflate, adaptive filtering, no interlace.
    return png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))


def _grey_idat(width: int, height: int) -> bytes:
    rows = (b"\x00" + bytes(width)) * height  # filter byte 0, then black pixels
    return png_chunk(b"IDAT", zlib.compress(rows))


def pixel_bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A PNG of a few dozen bytes whose header declares ``width`` x ``height`` pixels."""
    data = zlib.compress(b"\x00" * 64)  # far too little pixel data: only the header matters
    return PNG_SIGNATURE + _ihdr(width, height) + png_chunk(b"IDAT", data) + png_chunk(b"IEND", b"")


def write_chunk_png(out: IO[bytes], chunk_bytes: int, size: int = 8) -> None:
    """Writes a valid ``size`` x ``size`` PNG with a private ancillary chunk of ``chunk_bytes``
    zeros before its pixel data (what PIL reads whole, twice over, when it opens the file)."""
    out.write(PNG_SIGNATURE + _ihdr(size, size))
    out.write(struct.pack(">I", chunk_bytes) + b"prVt")
    crc = zlib.crc32(b"prVt")
    left = chunk_bytes
    while left:
        piece = _PIECE[: min(left, len(_PIECE))]
        out.write(piece)
        crc = zlib.crc32(piece, crc)
        left -= len(piece)
    out.write(struct.pack(">I", crc))
    out.write(_grey_idat(size, size) + png_chunk(b"IEND", b""))


def add_chunk_png(zf: zipfile.ZipFile, name: str, chunk_bytes: int) -> None:
    """Adds :func:`write_chunk_png` as member ``name`` of ``zf``, deflated (zeros: ~1000:1)."""
    info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    with zf.open(info, "w", force_zip64=chunk_bytes > 2**31 - 2**20) as out:
        write_chunk_png(out, chunk_bytes)


def patch_entry(data: bytes, name: str, *, file_size: int | None = None, flags: int = 0) -> bytes:
    """``data`` (a zip) with entry ``name``'s directory record changed: its declared
    uncompressed size set to ``file_size``, and ``flags`` OR-ed into its flag bits."""
    record = _find_record(data, name)
    out = bytearray(data)
    (old_flags,) = struct.unpack_from("<H", out, record + 8)
    struct.pack_into("<H", out, record + 8, old_flags | flags)
    if file_size is not None:
        struct.pack_into("<L", out, record + 24, file_size)
    return bytes(out)


def patch_end_count(data: bytes, count: int) -> bytes:
    """``data`` (a zip) whose end record declares ``count`` entries (the directory unchanged)."""
    end = data.rfind(b"PK\x05\x06")
    out = bytearray(data)
    struct.pack_into("<HH", out, end + 8, count, count)
    return bytes(out)


def _find_record(data: bytes, name: str) -> int:
    encoded = name.encode()
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        name_len = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46 : at + 46 + name_len] == encoded:
            return at
        at = data.find(b"PK\x01\x02", at + 4)
    raise KeyError(name)
