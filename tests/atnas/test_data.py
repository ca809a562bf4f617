"""Reading class-folder datasets from folders and zips: layout, groups, errors, task layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from atnas.data import ImageConfig, ImageSet, is_task_layout, iter_groups, load_images, load_task
from atnas.errors import DatasetError
from tests.atnas.conftest import class_files, image_bytes, write_folder, write_zip
from tests.hostile import pixel_bomb_png

OMNI_LIKE = {"Latin/c01": 3, "Latin/c02": 2, "Greek/c01": 4}


def _both(tmp_path: Path, files: dict[str, bytes]) -> list[Path]:
    """The same files as a folder and as a zip."""
    return [write_folder(tmp_path / "folder", files), write_zip(tmp_path / "data.zip", files)]


@pytest.mark.parametrize("kind", ["folder", "zip"])
def test_class_folders_groups_and_counts(tmp_path: Path, kind: str) -> None:
    path = _both(tmp_path, class_files(OMNI_LIKE))[kind == "zip"]
    s = load_images(path, ImageConfig(image_size=8))
    assert s.names == ["Greek/c01", "Latin/c01", "Latin/c02"]
    assert s.groups == ["Greek", "Latin", "Latin"]
    assert s.counts() == {"Greek/c01": 4, "Latin/c01": 3, "Latin/c02": 2}
    assert s.images.shape == (9, 1, 8, 8) and s.images.dtype == np.uint8
    assert sorted(np.concatenate(s.class_index).tolist()) == list(range(9))
    assert dict(iter_groups(s)) == {"Greek": 1, "Latin": 2}


def test_folder_and_zip_read_the_same_pixels(tmp_path: Path) -> None:
    a, b = (
        load_images(p, ImageConfig(image_size=8)) for p in _both(tmp_path, class_files(OMNI_LIKE))
    )
    assert a.names == b.names
    assert np.array_equal(a.images, b.images)


@pytest.mark.parametrize("kind", ["folder", "zip"])
def test_single_wrapper_folder_is_stripped(tmp_path: Path, kind: str) -> None:
    files = class_files(OMNI_LIKE, prefix="images_background/")
    s = load_images(_both(tmp_path, files)[kind == "zip"], ImageConfig(image_size=8))
    assert s.names == ["Greek/c01", "Latin/c01", "Latin/c02"]
    assert "images_background" not in s.groups
    assert s.select(include=["Latin"]).names == ["Latin/c01", "Latin/c02"]


def test_nested_leaf_classes_and_ignored_files(tmp_path: Path) -> None:
    files = class_files({"A/x/deep": 2, "A/y": 2, "B": 2})
    files["A/stray.png"] = image_bytes(5)  # A holds sub-folders: not a class, image ignored
    files["root.png"] = image_bytes(6)  # at the root: no class
    files["B/notes.txt"] = b"hello"
    files["B/.hidden.png"] = b"not an image"
    files["__MACOSX/B/._0.png"] = b"resource fork"
    s = load_images(write_folder(tmp_path / "d", files), ImageConfig(image_size=6))
    assert s.names == ["A/x/deep", "A/y", "B"]
    assert s.groups == ["A", "A", "B"]
    assert s.counts() == {"A/x/deep": 2, "A/y": 2, "B": 2}


@pytest.mark.parametrize(
    ("include", "exclude", "names"),
    [
        (["Latin"], None, ["Latin/c01", "Latin/c02"]),
        (None, ["Latin"], ["Greek/c01"]),
        (["Latin", "Greek"], ["Greek"], ["Latin/c01", "Latin/c02"]),
        (None, None, ["Greek/c01", "Latin/c01", "Latin/c02"]),
    ],
)
def test_include_exclude_by_group(
    tmp_path: Path, include: list[str] | None, exclude: list[str] | None, names: list[str]
) -> None:
    path = write_zip(tmp_path / "d.zip", class_files(OMNI_LIKE))
    s = load_images(path, ImageConfig(image_size=8), include=include, exclude=exclude)
    assert s.names == names
    # the selection keeps each class's own images
    full = load_images(path, ImageConfig(image_size=8))
    for n, ix in zip(s.names, s.class_index, strict=True):
        assert np.array_equal(s.images[ix], full.images[full.class_index[full.names.index(n)]])


@pytest.mark.parametrize("arg", ["include", "exclude"])
def test_unknown_group_is_an_error_naming_it(tmp_path: Path, arg: str) -> None:
    path = write_zip(tmp_path / "d.zip", class_files(OMNI_LIKE))
    with pytest.raises(DatasetError, match="Klingon"):
        load_images(path, ImageConfig(image_size=8), **{arg: ["Klingon"]})


def test_selection_that_leaves_nothing_is_an_error(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "d.zip", class_files(OMNI_LIKE))
    with pytest.raises(DatasetError, match="no class"):
        load_images(path, ImageConfig(image_size=8), exclude=["Latin", "Greek"])


@pytest.mark.parametrize("kind", ["folder", "zip"])
def test_corrupt_image_names_the_file(tmp_path: Path, kind: str) -> None:
    files = class_files(OMNI_LIKE)
    files["Latin/c02/broken.png"] = b"\x89PNG\r\n\x1a\n this is not really a png"
    path = _both(tmp_path, files)[kind == "zip"]
    with pytest.raises(DatasetError, match=r"Latin/c02/broken\.png"):
        load_images(path, ImageConfig(image_size=8))


def test_truncated_jpeg_names_the_file(tmp_path: Path) -> None:
    files = class_files({"a": 2, "b": 2})
    files["a/cut.jpg"] = image_bytes(1, size=32, fmt="JPEG")[:60]
    with pytest.raises(DatasetError, match=r"a/cut\.jpg"):
        load_images(write_zip(tmp_path / "d.zip", files), ImageConfig(image_size=8))


def test_a_pixel_bomb_is_refused_from_its_header(tmp_path: Path) -> None:
    files = class_files({"a": 2, "b": 2})
    files["a/bomb.png"] = pixel_bomb_png(100_000, 100_000)  # 10^10 pixels in ~60 bytes
    with pytest.raises(DatasetError, match=r"a/bomb\.png: more than \d+ pixels"):
        load_images(write_zip(tmp_path / "d.zip", files), ImageConfig(image_size=8))


@pytest.mark.parametrize("kind", ["folder", "zip"])
def test_images_over_the_local_limits_are_refused(tmp_path: Path, kind: str) -> None:
    files = class_files({"a": 2, "b": 2})
    files["b/big.png"] = image_bytes(0, size=12)
    path = _both(tmp_path, files)[kind == "zip"]
    with pytest.raises(DatasetError, match=r"b/big\.png: 12x12 pixels, over the limit of 100"):
        load_images(path, ImageConfig(image_size=8, max_pixels=100))
    limit = len(files["b/big.png"]) - 1
    with pytest.raises(DatasetError, match=rf"b/big\.png: \d+ bytes, over the limit of {limit}"):
        load_images(path, ImageConfig(image_size=8, max_bytes=limit))


def test_empty_and_classless_datasets(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no PNG or JPEG"):
        load_images(tmp_path / "empty")
    write_folder(tmp_path / "textonly", {"a/readme.txt": b"x"})
    with pytest.raises(DatasetError, match="no PNG or JPEG"):
        load_images(tmp_path / "textonly")
    write_folder(tmp_path / "flat", {"x.png": image_bytes(0), "y.png": image_bytes(1)})
    with pytest.raises(DatasetError, match="no class folders"):
        load_images(tmp_path / "flat")
    with pytest.raises(DatasetError, match="no such folder"):
        load_images(tmp_path / "missing")
    (tmp_path / "junk.zip").write_bytes(b"not a zip at all")
    with pytest.raises(DatasetError, match="not a readable zip"):
        load_images(tmp_path / "junk.zip")


def test_grey_and_rgb_png_and_jpeg_to_one_or_three_channels(tmp_path: Path) -> None:
    files = {
        "grey/0.png": image_bytes(0, size=12, mode="L"),
        "grey/1.jpg": image_bytes(1, size=12, mode="L", fmt="JPEG"),
        "rgb/0.png": image_bytes(2, size=20, mode="RGB"),
        "rgb/1.jpeg": image_bytes(3, size=9, mode="RGB", fmt="JPEG"),
    }
    path = write_zip(tmp_path / "d.zip", files)
    one = load_images(path, ImageConfig(image_size=10, channels=1))
    three = load_images(path, ImageConfig(image_size=10, channels=3))
    assert one.images.shape == (4, 1, 10, 10)
    assert three.images.shape == (4, 3, 10, 10)
    grey_rows = three.class_index[three.names.index("grey")]
    g = three.images[grey_rows]
    assert np.array_equal(g[:, 0], g[:, 1]) and np.array_equal(g[:, 1], g[:, 2])  # grey -> RGB


def test_resize_keeps_content(tmp_path: Path) -> None:
    from io import BytesIO

    from PIL import Image

    img = Image.new("L", (40, 40), 255)
    for x in range(20):
        for y in range(40):
            img.putpixel((x, y), 0)  # left half black
    buf = BytesIO()
    img.save(buf, format="PNG")
    s = load_images(write_folder(tmp_path / "d", {"a/0.png": buf.getvalue()}), ImageConfig(8))
    assert s.images[0, 0, :, :3].max() < 20 and s.images[0, 0, :, 5:].min() > 235


@pytest.mark.parametrize(
    "kwargs",
    [{"image_size": 3}, {"image_size": 1000}, {"channels": 2}, {"max_pixels": 0}, {"max_bytes": 0}],
)
def test_bad_image_config(kwargs: dict) -> None:
    with pytest.raises(DatasetError):
        ImageConfig(**kwargs)


def test_split_holds_out_whole_classes_deterministically(tmp_path: Path) -> None:
    files = class_files({f"g/c{i}": 2 for i in range(10)})
    s = load_images(write_zip(tmp_path / "d.zip", files), ImageConfig(image_size=6))
    rest, held = s.split(0.3, seed=1)
    assert len(held.names) == 3 and len(rest.names) == 7
    assert not set(rest.names) & set(held.names)
    _rest2, held2 = s.split(0.3, seed=1)
    assert held2.names == held.names and np.array_equal(held2.images, held.images)
    assert (
        s.split(0.3, seed=2)[1].names != held.names or s.split(0.3, seed=3)[1].names != held.names
    )
    with pytest.raises(DatasetError):
        s.split(1.0, seed=0)


def test_require_images_names_the_short_class() -> None:
    s = ImageSet(
        ["a", "b"], ["a", "b"], np.zeros((5, 1, 4, 4), np.uint8), [np.arange(3), np.arange(3, 5)]
    )
    s.require_images(2)
    with pytest.raises(DatasetError, match="'b' has 2 image"):
        s.require_images(3)


# ---------------------------------------------------------------------------------------------
# Task layout


def _task_files(support: dict[str, int], query: dict[str, int] | None, prefix: str = "") -> dict:
    files = class_files(support, prefix=prefix + "support/")
    if query:
        files |= class_files(query, prefix=prefix + "query/")
    return files


@pytest.mark.parametrize("prefix", ["", "mytask/"])
@pytest.mark.parametrize("kind", ["folder", "zip"])
def test_load_task_support_and_query(tmp_path: Path, kind: str, prefix: str) -> None:
    files = _task_files({"cat": 3, "dog": 2, "emu": 2}, {"emu": 1, "cat": 2}, prefix)
    path = _both(tmp_path, files)[kind == "zip"]
    assert is_task_layout(path)
    t = load_task(path, ImageConfig(image_size=8))
    assert t.support.names == ["cat", "dog", "emu"]
    assert t.support.counts() == {"cat": 3, "dog": 2, "emu": 2}
    assert t.query is not None
    assert t.query.names == t.support.names  # aligned to the support's class order
    assert t.query.counts() == {"cat": 2, "dog": 0, "emu": 1}


@pytest.mark.parametrize("kind", ["folder", "zip"])
def test_load_task_support_only_layout(tmp_path: Path, kind: str) -> None:
    """``query/`` is optional: ``support/<class>/*`` alone is a valid task."""
    path = _both(tmp_path, _task_files({"cat": 2, "dog": 2}, None))[kind == "zip"]
    assert is_task_layout(path)
    t = load_task(path, ImageConfig(image_size=8))
    assert t.support.names == ["cat", "dog"]
    assert t.query is None


def test_query_class_not_in_support_is_an_error(tmp_path: Path) -> None:
    files = _task_files({"cat": 2, "dog": 2}, {"cat": 1, "yak": 1})
    with pytest.raises(DatasetError, match="yak"):
        load_task(write_zip(tmp_path / "t.zip", files), ImageConfig(image_size=8))


def test_task_layout_errors(tmp_path: Path) -> None:
    files = _task_files({"cat": 2, "dog": 2}, {"cat": 1}) | {"other/x/0.png": image_bytes(1)}
    with pytest.raises(DatasetError, match="outside support/ and query/"):
        load_task(write_folder(tmp_path / "a", files), ImageConfig(image_size=8))
    files = _task_files({"cat": 2}, {"cat": 1})
    with pytest.raises(DatasetError, match="at least 2 classes"):
        load_task(write_folder(tmp_path / "b", files), ImageConfig(image_size=8))
    assert not is_task_layout(write_folder(tmp_path / "c", class_files(OMNI_LIKE)))
