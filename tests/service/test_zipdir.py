from __future__ import annotations

import io
import struct
import zipfile
import zlib

import pytest

from service.zipdir import Entry, _zip64_values, find_directory, iter_entries, open_member
from tests.conftest import Zips

# ZipInfo's names for Entry's fields, in order.
_FIELDS = (
    "filename",
    "flag_bits",
    "compress_type",
    "compress_size",
    "file_size",
    "CRC",
    "header_offset",
)


def _walk(data: bytes) -> list[Entry]:
    fh = io.BytesIO(data)
    return list(iter_entries(fh, find_directory(fh)))


def _as_zipfile_sees_it(data: bytes) -> list[tuple[object, ...]]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return [tuple(getattr(i, f) for f in _FIELDS) for i in zf.infolist()]


def _mixed_zip(comment: bytes = b"") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.comment = comment
        zf.writestr("wrap/", b"")
        zf.writestr("wrap/cat/1.png", Zips.png(1))
        zf.writestr("wrap/cat/ünïcode.png", Zips.png(2), compress_type=zipfile.ZIP_DEFLATED)
        zf.writestr("wrap/readme.txt", b"x" * 5000, compress_type=zipfile.ZIP_DEFLATED)
    return buf.getvalue()


@pytest.mark.parametrize(
    "data", [_mixed_zip(), _mixed_zip(comment=b"a comment")], ids=["plain", "comment"]
)
def test_the_walk_reads_what_zipfile_reads(data: bytes) -> None:
    assert [tuple(e) for e in _walk(data)] == _as_zipfile_sees_it(data)
    assert find_directory(io.BytesIO(data)).count == 4


def test_a_comment_holding_the_end_signature_is_skipped() -> None:
    data = _mixed_zip(comment=b"PK\x05\x06 looks like an end record" + b"\0" * 30)
    assert [e.name for e in _walk(data)] == [e.name for e in _walk(_mixed_zip())]


def test_prepended_data_is_accounted_for() -> None:
    data = b"#!/bin/sh\nexit 0\n" * 100 + _mixed_zip()  # a self-extracting archive
    assert [tuple(e) for e in _walk(data)] == _as_zipfile_sees_it(data)
    assert find_directory(io.BytesIO(data)).shift == 1700


@pytest.mark.parametrize("prefix", [b"", b"MZ" * 500], ids=["plain", "prepended"])
def test_members_read_back_as_zipfile_reads_them(prefix: bytes) -> None:
    data = prefix + _mixed_zip()
    fh = io.BytesIO(data)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for entry in _walk(data):
            with open_member(fh, entry) as member:
                assert member.read() == zf.read(entry.name)


def test_a_local_header_that_names_another_file_is_a_bad_zip() -> None:
    data = _mixed_zip()
    entry = _walk(data)[1]
    at = entry.header_offset + 30
    forged = data[:at] + b"X" + data[at + 1 :]
    with pytest.raises(zipfile.BadZipFile, match="names another file"):
        open_member(io.BytesIO(forged), entry)
    with pytest.raises(zipfile.BadZipFile, match="no local header"):
        open_member(io.BytesIO(data), entry._replace(header_offset=entry.header_offset + 1))


def test_zip64_end_record() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:  # past 65535 entries zipfile writes ZIP64 end records
        for i in range(70_000):
            zf.writestr(f"c/{i}", b"")
    data = buf.getvalue()
    assert b"PK\x06\x06" in data[-200:]
    fh = io.BytesIO(data)
    directory = find_directory(fh)
    assert directory.count == 70_000
    names = [e.name for e in iter_entries(fh, directory)]
    assert len(names) == 70_000 and names[-1] == "c/69999"


def test_zip64_extra_values() -> None:
    big = 0xFFFFFFFF
    extra = struct.pack("<2H", 0x000A, 4) + b"\0" * 4  # another field first
    extra += struct.pack("<2H3Q", 0x0001, 24, 5 * 2**32, 2**32 + 7, 2**40)
    assert _zip64_values(extra, (big, big, big)) == (5 * 2**32, 2**32 + 7, 2**40)
    only_offset = struct.pack("<2HQ", 0x0001, 8, 2**33)
    assert _zip64_values(only_offset, (12, 10, big)) == (12, 10, 2**33)
    with pytest.raises(zipfile.BadZipFile, match="without a ZIP64 extra"):
        _zip64_values(b"", (big, 3, 0))
    with pytest.raises(zipfile.BadZipFile, match="too short"):
        _zip64_values(struct.pack("<2HL", 0x0001, 4, 1), (big, 3, 0))


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not a zip at all" * 100,
        _mixed_zip()[:-30],  # the end record cut
        _mixed_zip()[:200] + _mixed_zip()[-22:],  # the directory gone, the end record kept
    ],
    ids=["empty", "text", "no-end", "no-directory"],
)
def test_malformed_zips_are_bad_zip_files(data: bytes) -> None:
    with pytest.raises(zipfile.BadZipFile):
        _walk(data)


def test_the_walk_keeps_nothing_but_a_small_tuple_per_entry() -> None:
    png = Zips.png(1)
    entry = _walk(_mixed_zip())[1]
    assert entry == Entry("wrap/cat/1.png", 0, 0, len(png), len(png), zlib.crc32(png), 35)
