"""A zip's central directory, walked one entry at a time without keeping it in memory.

``zipfile.ZipFile`` reads the whole directory and keeps a ``ZipInfo`` of ~0.7 KB per entry
before anything can be checked: a 100 MB upload of empty entries holds two million of them
(1.3 GB), and even 250,000 cost 170 MB. This walk reads the same records the same way (from
the end record, by the directory's size, with the ZIP64 forms) and yields a small tuple per
entry, so that a caller can count entries and add up sizes and stop at a limit; and
:func:`open_member` reads one entry's data through zipfile's own inflater, with no ``ZipFile``.

Every malformed structure is a :class:`zipfile.BadZipFile`.

Example:
    >>> import io, zipfile
    >>> buf = io.BytesIO()
    >>> with zipfile.ZipFile(buf, "w") as zf:
    ...     zf.writestr("cat/1.png", b"12345")
    >>> d = find_directory(buf)
    >>> d.count, [(e.name, e.file_size) for e in iter_entries(buf, d)]
    (1, [('cat/1.png', 5)])
"""

from __future__ import annotations

import struct
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, NamedTuple
from zipfile import BadZipFile

_END = struct.Struct("<4s4H2LH")  # end of central directory record (22 bytes + a comment)
_END_SIG = b"PK\x05\x06"
_LOCATOR64 = struct.Struct("<4sLQL")  # ZIP64 end locator (20 bytes), just before the end record
_LOCATOR64_SIG = b"PK\x06\x07"
_END64 = struct.Struct("<4sQ2H2L4Q")  # ZIP64 end record (56 bytes)
_END64_SIG = b"PK\x06\x06"
_ENTRY = struct.Struct("<4s6H3L5H2L")  # central directory file header (46 bytes + variable)
_ENTRY_SIG = b"PK\x01\x02"
_LOCAL = struct.Struct("<4s5H3L2H")  # local file header (30 bytes + name + extra), before data
_LOCAL_SIG = b"PK\x03\x04"
_OVERFLOW = 0xFFFFFFFF
_MAX_COMMENT = 0xFFFF
_ZIP64_EXTRA = 0x0001
_UTF8_FLAG = 0x800


@dataclass(frozen=True)
class Directory:
    """Where a zip's central directory lies and how many entries its end record declares."""

    offset: int  # start of the directory in the file (prepended data accounted for)
    size: int  # bytes
    count: int  # as declared; the walk may find a different number in a crafted zip
    shift: int = 0  # bytes prepended to the archive (a self-extractor): added to every offset


class Entry(NamedTuple):
    """One central directory record: what the checks need, nothing more."""

    name: str  # decoded as zipfile does (UTF-8 when flagged, else cp437; cut at a NUL)
    flags: int  # general purpose bits; bit 0: encrypted
    method: int  # 0 stored, 8 deflated, 12 bzip2, 14 lzma, ...
    compress_size: int
    file_size: int  # uncompressed size, as declared
    crc: int
    header_offset: int  # of the entry's local header in the file (shift included)


def find_directory(fh: BinaryIO) -> Directory:
    """Reads the end record(s) at the tail of ``fh``; :class:`BadZipFile` when there are none."""
    fh.seek(0, 2)
    file_size = fh.tell()
    tail_len = min(file_size, _END.size + _MAX_COMMENT)
    fh.seek(file_size - tail_len)
    tail = fh.read(tail_len)
    # The record is followed by its comment, which may itself hold the signature: take the
    # last candidate whose comment length ends exactly at the end of the file.
    at = tail.rfind(_END_SIG)
    while at >= 0 and (
        len(tail) - at < _END.size or at + _END.size + _END.unpack_from(tail, at)[7] != len(tail)
    ):
        at = tail.rfind(_END_SIG, 0, at)
    if at < 0:
        raise BadZipFile("no end of central directory record")
    _, _, _, _, count, size, declared_offset, _ = _END.unpack_from(tail, at)
    end_pos = file_size - tail_len + at
    offset = end_pos - size
    if end_pos >= _LOCATOR64.size:
        fh.seek(end_pos - _LOCATOR64.size)
        locator = fh.read(_LOCATOR64.size)
        if locator[:4] == _LOCATOR64_SIG:
            fh.seek(end_pos - _LOCATOR64.size - _END64.size)
            record = fh.read(_END64.size)
            if len(record) != _END64.size or record[:4] != _END64_SIG:
                raise BadZipFile("a ZIP64 locator without its end record")
            *_, count, size, declared_offset = _END64.unpack(record)
            offset = end_pos - _LOCATOR64.size - _END64.size - size
    if offset < 0:
        raise BadZipFile("the central directory lies outside the file")
    return Directory(offset=offset, size=size, count=count, shift=offset - declared_offset)


def iter_entries(fh: BinaryIO, directory: Directory) -> Iterator[Entry]:
    """The records of ``directory``, read in order from ``fh`` (which must stay open)."""
    fh.seek(directory.offset)
    consumed = 0
    while consumed < directory.size:
        head = fh.read(_ENTRY.size)
        if len(head) != _ENTRY.size or head[:4] != _ENTRY_SIG:
            raise BadZipFile("a central directory record is truncated or malformed")
        fields = _ENTRY.unpack(head)
        flags, method, crc = fields[3], fields[4], fields[7]
        compress_size, file_size, header_offset = fields[8], fields[9], fields[16]
        name_len, extra_len, comment_len = fields[10], fields[11], fields[12]
        raw_name = fh.read(name_len)
        extra = fh.read(extra_len)
        fh.seek(comment_len, 1)
        if len(raw_name) != name_len or len(extra) != extra_len:
            raise BadZipFile("a central directory record is truncated")
        if _OVERFLOW in (file_size, compress_size, header_offset):
            file_size, compress_size, header_offset = _zip64_values(
                extra, (file_size, compress_size, header_offset)
            )
        consumed += _ENTRY.size + name_len + extra_len + comment_len
        name = _decode_name(raw_name, flags)
        offset = header_offset + directory.shift
        yield Entry(name, flags, method, compress_size, file_size, crc, offset)


def open_member(fh: BinaryIO, entry: Entry) -> zipfile.ZipExtFile:
    """A reader of ``entry``'s uncompressed bytes: zipfile's own, which inflates at most what
    is asked for in each read, stops at ``entry.file_size`` and checks the CRC at the end.

    ``fh`` must stay open and must not be moved by anyone else while the reader is in use.
    """
    fh.seek(entry.header_offset)
    head = fh.read(_LOCAL.size)
    if len(head) != _LOCAL.size or head[:4] != _LOCAL_SIG:
        raise BadZipFile(f"no local header for {entry.name!r} where the directory says")
    *_, name_len, extra_len = _LOCAL.unpack(head)
    raw_name = fh.read(name_len)
    if _decode_name(raw_name, entry.flags) != entry.name:
        raise BadZipFile(f"the local header of {entry.name!r} names another file")
    fh.seek(extra_len, 1)
    info = zipfile.ZipInfo(entry.name)
    info.flag_bits = entry.flags
    info.compress_type = entry.method
    info.compress_size = entry.compress_size
    info.file_size = entry.file_size
    info.CRC = entry.crc
    return zipfile.ZipExtFile(fh, "r", info)


def _zip64_values(extra: bytes, values: tuple[int, int, int]) -> tuple[int, int, int]:
    """(file size, compressed size, header offset), each 32-bit overflow replaced from the
    ZIP64 extra field (which holds only the fields that overflowed, in that order)."""
    pos = 0
    while pos + 4 <= len(extra):
        tag, length = struct.unpack_from("<2H", extra, pos)
        if tag == _ZIP64_EXTRA:
            data = extra[pos + 4 : pos + 4 + length]
            out = []
            k = 0
            for value in values:
                if value == _OVERFLOW:
                    if len(data) < k + 8:
                        raise BadZipFile("a ZIP64 extra field is too short")
                    (value,) = struct.unpack_from("<Q", data, k)
                    k += 8
                out.append(value)
            return out[0], out[1], out[2]
        pos += 4 + length
    raise BadZipFile("a 32-bit field overflowed without a ZIP64 extra field")


def _decode_name(raw: bytes, flags: int) -> str:
    try:
        name = raw.decode("utf-8") if flags & _UTF8_FLAG else raw.decode("cp437")
    except UnicodeDecodeError:
        raise BadZipFile("an entry name flagged UTF-8 is not valid UTF-8") from None
    nul = name.find("\x00")
    return name if nul < 0 else name[:nul]
