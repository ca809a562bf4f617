from __future__ import annotations

import io
import tracemalloc
import zipfile
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

import pytest

from service.errors import InvalidDataset, ServiceError, UploadTooLarge
from service.layout import Layout
from service.settings import Settings
from service.zipcheck import BoundedReader, UploadLimits, check_zip, env_var
from tests.conftest import Zips
from tests.hostile import add_chunk_png, patch_end_count, patch_entry, pixel_bomb_png

MiB = 1024 * 1024
PNG = Zips.png()


def _zip(tmp_path: Path, members: dict[str, bytes]) -> Path:
    return Zips.write(tmp_path / "up.zip", Zips.zip(members))


def _chunk_zip(tmp_path: Path, chunk_bytes: int) -> Path:
    path = tmp_path / "chunk.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("cat/1.png", PNG)
        add_chunk_png(zf, "dog/1.png", chunk_bytes)
    return path


def _peak(fn: Callable[[], object]) -> tuple[object, int]:
    """What ``fn`` returned or raised, and the peak of Python allocations meanwhile (bytes)."""
    tracemalloc.start()
    try:
        result: object = fn()
    except ServiceError as exc:
        result = exc
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return result, peak


def test_limits_default_to_the_settings_and_name_their_variables() -> None:
    defaults = Settings()
    assert UploadLimits() == UploadLimits.from_settings(defaults)
    custom = Settings(max_upload_entries=7, max_folder_depth=2, max_image_pixels=9)
    assert UploadLimits.from_settings(custom) == UploadLimits(
        max_upload_entries=7, max_folder_depth=2, max_image_pixels=9
    )
    for f in fields(UploadLimits):
        assert f.name in Settings.model_fields
        assert env_var(f.name) == "ATNAS_" + f.name.upper()


def test_a_good_zip_gives_its_layout(tmp_path: Path) -> None:
    layout = check_zip(Zips.write(tmp_path / "ok.zip", Zips.classes({"a/x": 2, "b/y": 1})))
    assert isinstance(layout, Layout) and layout.counts == {"a/x": 2, "b/y": 1}


def test_a_huge_png_chunk_is_refused_from_the_directory_alone(tmp_path: Path) -> None:
    path = _chunk_zip(tmp_path, 64 * MiB)  # 64 MiB of zeros: a ~65 KB zip
    assert path.stat().st_size < 100_000
    err, peak = _peak(lambda: check_zip(path))
    assert isinstance(err, UploadTooLarge)
    assert err.reason == (
        f"'dog/1.png' uncompresses to {64 * MiB + 81} bytes, over the limit of {32 * MiB} for "
        "one image (ATNAS_MAX_IMAGE_BYTES)"
    )
    assert peak < 2 * MiB  # nothing of the chunk was read


def test_memory_is_bounded_by_one_image_within_the_limit(tmp_path: Path) -> None:
    path = _chunk_zip(tmp_path, 8 * MiB)
    layout, peak = _peak(lambda: check_zip(path, UploadLimits(max_image_bytes=9 * MiB)))
    assert isinstance(layout, Layout) and layout.classes == ["cat", "dog"]
    assert peak < 3 * 8 * MiB  # PIL reads the chunk whole (and joins its pieces): about 2x


def test_a_directory_that_understates_a_size_is_refused(tmp_path: Path) -> None:
    good = _chunk_zip(tmp_path, 64 * MiB).read_bytes()
    path = Zips.write(tmp_path / "lie.zip", patch_entry(good, "dog/1.png", file_size=1000))
    err, peak = _peak(lambda: check_zip(path))
    assert isinstance(err, InvalidDataset), err
    assert err.reason.startswith("dog/1.png: not a readable image (Bad CRC-32")
    assert peak < 2 * MiB  # zipfile stops at the declared size; the CRC then differs


def test_the_bounded_reader_stops_one_byte_past_the_declared_size() -> None:
    ok = BoundedReader(io.BytesIO(b"12345"), 5, "a.png")
    assert ok.read(2) == b"12" and ok.tell() == 2 and ok.seek(0) == 0
    assert ok.read() == b"12345" and ok.read() == b""
    buf = bytearray(3)
    assert ok.seek(1) == 1 and ok.readinto(buf) == 3 and bytes(buf) == b"234"
    raw = io.BytesIO(b"x" * 10_000)
    liar = BoundedReader(raw, 5, "a.png")
    with pytest.raises(InvalidDataset, match=r"'a\.png' inflates to more than the 5 bytes"):
        liar.read()
    assert raw.tell() == 6  # never asked for more than one byte past the limit
    with pytest.raises(InvalidDataset, match="inflates to more than"):
        BoundedReader(io.BytesIO(b"x" * 100), 5, "a.png").seek(50)


def test_a_pixel_bomb_is_refused_from_its_header(tmp_path: Path) -> None:
    path = _zip(tmp_path, {"cat/1.png": PNG, "dog/bomb.png": pixel_bomb_png()})
    assert path.stat().st_size < 1000
    err, peak = _peak(lambda: check_zip(path))
    assert isinstance(err, UploadTooLarge)
    assert err.reason.startswith("'dog/bomb.png' declares more than ")
    assert err.reason.endswith(" pixels, over the limit of 16777216 (ATNAS_MAX_IMAGE_PIXELS)")
    assert peak < MiB


def test_pixels_are_checked_before_verify(tmp_path: Path) -> None:
    # 100 x 100 with a broken CRC after the header: the pixel limit answers first.
    path = _zip(tmp_path, {"cat/1.png": PNG, "dog/1.png": Zips.png(size=100)[:-4] + b"XXXX"})
    with pytest.raises(UploadTooLarge) as err:
        check_zip(path, UploadLimits(max_image_pixels=99 * 99))
    assert err.value.reason == (
        "'dog/1.png' is 100x100 = 10000 pixels, over the limit of 9801 (ATNAS_MAX_IMAGE_PIXELS)"
    )
    check_zip(_zip(tmp_path, {"a/1.png": Zips.png(size=100)}), UploadLimits(max_image_pixels=10**4))


def test_entries_of_every_kind_count(tmp_path: Path) -> None:
    members = {"a/": b"", "a/1.png": PNG, "b/1.png": PNG, "readme.txt": b"hi"}
    check_zip(_zip(tmp_path, members), UploadLimits(max_upload_entries=4))
    with pytest.raises(UploadTooLarge) as err:
        check_zip(_zip(tmp_path, members), UploadLimits(max_upload_entries=3))
    assert err.value.reason == (
        "the zip has 4 entries, over the limit of 3 (ATNAS_MAX_UPLOAD_ENTRIES)"
    )


def test_an_end_record_that_understates_the_entries_is_caught_by_the_walk(tmp_path: Path) -> None:
    data = Zips.zip({f"c{i}/1.png": PNG for i in range(11)})
    path = Zips.write(tmp_path / "lie.zip", patch_end_count(data, 2))
    with pytest.raises(UploadTooLarge, match=r"^the zip has at least 11 entries, over the limit"):
        check_zip(path, UploadLimits(max_upload_entries=10))


def test_folder_depth(tmp_path: Path) -> None:
    deep = {"w/g/c/1.png": PNG, "w/g/d/1.png": PNG}
    check_zip(_zip(tmp_path, deep), UploadLimits(max_folder_depth=3))
    with pytest.raises(InvalidDataset) as err:
        check_zip(_zip(tmp_path, {**deep, "w/g/c/x/y/": b""}), UploadLimits(max_folder_depth=3))
    assert err.value.reason == (
        "'w/g/c/x/y/' is 5 folders deep, over the limit of 3 (ATNAS_MAX_FOLDER_DEPTH)"
    )


def test_total_uncompressed_size_counts_every_entry(tmp_path: Path) -> None:
    members = {"a/1.png": PNG, "b/1.png": PNG, "notes.bin": bytes(2 * MiB)}
    check_zip(_zip(tmp_path, members), UploadLimits(max_uncompressed_bytes=3 * MiB))
    with pytest.raises(UploadTooLarge) as err:
        check_zip(_zip(tmp_path, members), UploadLimits(max_uncompressed_bytes=MiB))
    total = 2 * len(PNG) + 2 * MiB
    assert err.value.reason == (
        f"the zip uncompresses to at least {total} bytes (counting up to 'notes.bin'), over the "
        f"limit of {MiB} (ATNAS_MAX_UNCOMPRESSED_BYTES)"
    )


def test_one_image_at_its_byte_limit_passes(tmp_path: Path) -> None:
    path = _zip(tmp_path, {"a/1.png": PNG, "b/1.png": PNG})
    check_zip(path, UploadLimits(max_image_bytes=len(PNG)))
    with pytest.raises(UploadTooLarge, match=r"^'a/1.png' uncompresses to \d+ bytes, over the"):
        check_zip(path, UploadLimits(max_image_bytes=len(PNG) - 1))


def test_encrypted_and_bzip2_images_are_refused(tmp_path: Path) -> None:
    data = Zips.zip({"a/1.png": PNG, "b/1.png": PNG})
    path = Zips.write(tmp_path / "enc.zip", patch_entry(data, "b/1.png", flags=0x1))
    with pytest.raises(InvalidDataset, match=r"^'b/1.png' is encrypted"):
        check_zip(path)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a/1.png", PNG)
        zf.writestr("b/1.png", PNG, compress_type=zipfile.ZIP_BZIP2)
    path = Zips.write(tmp_path / "bz.zip", buf.getvalue())
    with pytest.raises(InvalidDataset, match=r"^'b/1.png' is compressed with zip method 12"):
        check_zip(path)


def test_non_images_are_never_read(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a/1.png", PNG)
        zf.writestr("b/1.png", PNG)
        zf.writestr("notes.txt", b"anything", compress_type=zipfile.ZIP_BZIP2)
    check_zip(Zips.write(tmp_path / "ok.zip", buf.getvalue()))


def test_not_a_zip(tmp_path: Path) -> None:
    with pytest.raises(InvalidDataset, match="not a zip archive"):
        check_zip(Zips.write(tmp_path / "x.zip", b"hello" * 100))
    with pytest.raises(InvalidDataset, match="not a zip archive"):
        check_zip(tmp_path / "missing.zip")


@pytest.mark.parametrize("odd", ["a//b/1.png", "./a/1.png", "a/./1.png"])
def test_names_the_layout_would_rewrite_are_refused(tmp_path: Path, odd: str) -> None:
    path = _zip(tmp_path, {"c/1.png": PNG, odd: pixel_bomb_png()})
    with pytest.raises(InvalidDataset, match=r"empty or '\.' folder names are not allowed"):
        check_zip(path)


def test_every_copy_of_a_repeated_name_is_checked(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf, pytest.warns(UserWarning, match="Duplicate name"):
        zf.writestr("a/1.png", PNG)
        zf.writestr("b/1.png", PNG)
        zf.writestr("b/1.png", pixel_bomb_png())  # the copy zipfile (and so a worker) reads
    with pytest.raises(UploadTooLarge, match=r"^'b/1.png' declares more than"):
        check_zip(Zips.write(tmp_path / "dup.zip", buf.getvalue()))


def test_a_layout_member_missing_from_the_directory_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ghost = Layout(kind="classes", members={"a": ["a/1.png"], "b": ["b/ghost.png"]})
    monkeypatch.setattr("service.zipcheck.scan_layout", lambda names: ghost)
    with pytest.raises(InvalidDataset, match=r"^'b/ghost.png': no such entry"):
        check_zip(_zip(tmp_path, {"a/1.png": PNG, "b/1.png": PNG}))


def test_jpegs_and_pngs_read_in_one_piece_or_streamed(tmp_path: Path) -> None:
    import random

    from PIL import Image

    def noise(size: int, fmt: str) -> bytes:
        img = Image.frombytes("RGB", (size, size), random.Random(size).randbytes(3 * size * size))
        buf = io.BytesIO()
        img.save(buf, format=fmt, quality=95)
        return buf.getvalue()

    big_jpeg, big_png = noise(1200, "JPEG"), noise(700, "PNG")
    assert min(len(big_jpeg), len(big_png)) > MiB  # past the one-piece size: streamed
    members = {"a/1.jpg": noise(16, "JPEG"), "a/2.jpeg": big_jpeg, "b/1.png": big_png}
    assert check_zip(_zip(tmp_path, members)).counts == {"a": 2, "b": 1}
    members["b/1.png"] = big_png[: len(big_png) // 2]  # cut: verify finds it out
    with pytest.raises(InvalidDataset, match=r"^b/1\.png: not a readable image"):
        check_zip(_zip(tmp_path, members))
