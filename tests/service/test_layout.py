from __future__ import annotations

import pytest

from service.errors import InvalidDataset, InvalidSpec
from service.layout import scan_layout, select_classes


def test_wrapper_is_stripped_and_groups_are_top_folders() -> None:
    layout = scan_layout(
        [
            "images_background/",
            "images_background/Latin/",
            "images_background/Latin/character01/1.png",
            "images_background/Latin/character01/2.PNG",
            "images_background/Latin/character02/1.jpg",
            "images_background/Greek/character01/1.jpeg",
        ]
    )
    assert layout.kind == "classes"
    assert layout.classes == ["Greek/character01", "Latin/character01", "Latin/character02"]
    assert layout.groups == ["Greek", "Latin"]
    assert layout.counts["Latin/character01"] == 2
    assert layout.members["Greek/character01"] == ["images_background/Greek/character01/1.jpeg"]


def test_flat_classes_are_their_own_groups() -> None:
    layout = scan_layout(["cat/1.png", "cat/2.png", "dog/1.png"])
    assert layout.classes == ["cat", "dog"] and layout.groups == ["cat", "dog"]


def test_single_wrapped_class_is_not_stripped_to_nothing() -> None:
    # Every image sits directly in one folder: that folder is the class, not a wrapper.
    layout = scan_layout(["cat/1.png", "cat/2.png"])
    assert layout.classes == ["cat"]


def test_nested_classes_at_mixed_depths_and_non_leaf_images() -> None:
    layout = scan_layout(["a/x/1.png", "a/x/deep/1.png", "a/y/1.png", "b/1.png", "root.png"])
    # a/x holds images and a sub-folder of images: not a leaf, its own images are ignored.
    assert layout.classes == ["a/x/deep", "a/y", "b"]
    assert layout.groups == ["a", "b"]


def test_junk_entries_are_ignored() -> None:
    layout = scan_layout(
        [
            "__MACOSX/cat/._1.png",
            "cat/.DS_Store",
            "cat/._1.png",
            ".hidden/1.png",
            "cat/.thumbs/1.png",
            "cat/1.png",
            "cat/notes.txt",
            "dog/1.gif",
            "dog/2.png",
        ]
    )
    assert layout.counts == {"cat": 1, "dog": 1}


def test_task_dataset() -> None:
    layout = scan_layout(
        [
            "task/support/cat/1.png",
            "task/support/dog/1.png",
            "task/support/dog/2.png",
            "task/query/cat/9.png",
        ]
    )
    assert layout.kind == "task"
    assert layout.classes == ["cat", "dog"]
    assert layout.counts == {"cat": 1, "dog": 2}
    assert layout.query_counts == {"cat": 1}
    assert layout.members["cat"] == ["task/support/cat/1.png"]


def test_task_without_query() -> None:
    layout = scan_layout(["support/cat/1.png", "support/dog/1.png"])
    assert layout.kind == "task" and layout.query_counts is None


def test_query_only_is_a_classes_dataset() -> None:
    assert scan_layout(["query/cat/1.png", "other/dog/1.png"]).kind == "classes"


def test_task_query_classes_must_be_support_classes() -> None:
    with pytest.raises(InvalidDataset, match=r"query classes \['cow'\] are not in support/"):
        scan_layout(["support/cat/1.png", "query/cow/1.png"])


def test_task_image_outside_support_and_query() -> None:
    with pytest.raises(InvalidDataset, match="outside support/ and query/"):
        scan_layout(["support/cat/1.png", "stray.png"])


@pytest.mark.parametrize(
    ("names", "reason"),
    [
        ([], "no PNG or JPEG"),
        (["readme.txt", "a/b.gif"], "no PNG or JPEG"),
        (["__MACOSX/a/1.png"], "no PNG or JPEG"),
        (["1.png", "2.png"], "no class folders"),
    ],
)
def test_no_classes(names: list[str], reason: str) -> None:
    with pytest.raises(InvalidDataset, match=reason):
        scan_layout(names)


def test_select_classes_by_group() -> None:
    classes = ["Greek/a", "Greek/b", "Latin/a", "cat"]
    assert select_classes(classes, None, None) == classes
    assert select_classes(classes, ["Greek"], None) == ["Greek/a", "Greek/b"]
    assert select_classes(classes, None, ["Greek", "cat"]) == ["Latin/a"]
    with pytest.raises(InvalidSpec, match=r"include: unknown group\(s\) \['Klingon'\]"):
        select_classes(classes, ["Klingon", "Greek"], None)
    with pytest.raises(InvalidSpec, match="exclude: unknown"):
        select_classes(classes, None, ["Elvish"])
    with pytest.raises(InvalidSpec, match="leaves no class"):
        select_classes(classes, ["Greek"], ["Greek"])


def test_wrapped_support_only_task() -> None:
    layout = scan_layout(["mytask/support/cat/1.png", "mytask/support/dog/1.png"])
    assert layout.kind == "task" and layout.classes == ["cat", "dog"]
    assert layout.members["dog"] == ["mytask/support/dog/1.png"]


@pytest.mark.parametrize("bad", ["/tmp/a/1.png", "a/../../etc/1.png", "../b/1.png", "/c/"])
def test_absolute_or_parent_names_are_refused_by_name(bad: str) -> None:
    with pytest.raises(InvalidDataset, match="unsafe entry name") as err:
        scan_layout(["a/x/1.png", bad, "a/y/1.png"])
    assert repr(bad) in str(err.value)


def test_deeply_nested_leaves_among_many_folders() -> None:
    # 3,000 leaves beside their parents: the leaf test is by ancestors, not by pairs of folders.
    names = [f"g{i % 7}/c{i}/1.png" for i in range(3000)] + [f"g{i}/1.png" for i in range(7)]
    names += ["g0/c0/deeper/1.png"]
    layout = scan_layout(names)
    assert len(layout.classes) == 3000 and "g0/c0/deeper" in layout.classes
    assert "g0/c0" not in layout.classes and "g0" not in layout.classes


def test_empty_and_dot_components_are_dropped_as_pathlib_would() -> None:
    layout = scan_layout(["w//cat/1.png", "./w/dog/./2.png", "w/dog/3.png"])
    assert layout.members == {"cat": ["w/cat/1.png"], "dog": ["w/dog/2.png", "w/dog/3.png"]}
