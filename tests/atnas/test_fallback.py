"""The pixel-centroid fallback: a search ships nearest centroid on pixels when it beat the
adapted subnet on held-out support images (atnas.floors.check_pixel_floor), end to end."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from atnas import pipeline
from atnas.data import ImageSet, TaskData
from atnas.export import load_exported
from atnas.fitness import adapt_encode, support_splits
from atnas.floors import FloorCheck, check_pixel_floor, pixel_centroid_acc
from atnas.learner import score
from atnas.tasks import to_float
from tests.atnas.conftest import TINY_SEARCH, tiny_state

CPU = torch.device("cpu")
WAY, SIZE = 4, 8


def brightness_set(per_class: int, seed: int) -> ImageSet:
    """Classes that differ only by their overall brightness: a group-normalised net cannot
    tell them apart (it removes each group's mean), nearest centroid on pixels can."""
    rng = np.random.default_rng(seed)
    base = np.random.default_rng(99).random((1, SIZE, SIZE))
    images, index = [], []
    for c in range(WAY):
        for _ in range(per_class):
            img = 0.4 * base + 0.15 * c + 0.1 * rng.random((1, SIZE, SIZE))
            images.append((255 * img.clip(0, 1)).astype(np.uint8))
        index.append(np.arange(c * per_class, (c + 1) * per_class))
    names = [f"b{c}" for c in range(WAY)]
    return ImageSet(names, names, np.stack(images), index)


def brightness_task(shot: int = 3, query: int = 5) -> TaskData:
    return TaskData(brightness_set(shot, seed=1), brightness_set(query, seed=2))


def tensors(images: ImageSet) -> tuple[torch.Tensor, torch.Tensor]:
    y = torch.zeros(len(images.images), dtype=torch.long)
    for label, rows in enumerate(images.class_index):
        y[torch.from_numpy(rows)] = label
    return to_float(images.images), y


def test_the_check_holds_out_support_images_and_prefers_pixels_only_when_they_win() -> None:
    state = tiny_state()
    encode = state.ranked()[0].encode
    x, y = tensors(brightness_set(3, seed=1))
    inner = TINY_SEARCH.final_inner
    assert inner is not None
    check = check_pixel_floor(state.supernet, encode, x, y, WAY, inner)
    assert check is not None
    # the pixels get all 3 folds right and the subnet missed one image of the first fold:
    # no later fold can change the verdict, so the check adapted one fold only
    assert (check.folds, check.held_out) == (1, WAY)  # one image per class per fold
    assert check.pixel_acc == 1.0 and check.model_acc <= 0.5 and check.use_pixels
    one_shot = check_pixel_floor(state.supernet, encode, x[::3], y[::3], WAY, inner)
    assert one_shot is None  # nothing to hold out
    assert not FloorCheck(0.8, 0.8, 2, 8).use_pixels  # a tie keeps the subnet
    assert FloorCheck(0.75, 0.8, 2, 8).to_json()["use_pixels"] is True


def test_a_search_ships_the_pixel_centroid_and_says_so(tmp_path: Path) -> None:
    state, task = tiny_state(), brightness_task()
    cfg = dataclasses.replace(TINY_SEARCH, pixel_fallback=True)
    outcome = pipeline.search_task(state, task, cfg, device=CPU)
    m = outcome.metrics
    assert m["model"] == "pixel_centroid" and m["floors"]["check"]["use_pixels"] is True
    x, y = tensors(task.support)
    assert task.query is not None
    qx, qy = tensors(task.query)
    assert outcome.query_acc == pixel_centroid_acc(x, y, qx, qy, WAY) == 1.0
    assert m["floors"]["query"]["subnet"] < m["floors"]["query"]["model"]

    pipeline.export_outcome(tmp_path, state, outcome)
    assert json.loads((tmp_path / "model.json").read_text())["kind"] == "pixel_centroid"
    assert "nearest-centroid classifier on raw pixels" in (tmp_path / "README.md").read_text()
    probe = torch.cat([qx, torch.rand(7, 1, SIZE, SIZE)])
    with torch.no_grad():
        ts = load_exported(tmp_path / "model.ts")(probe)
    assert torch.equal(ts[: len(qy)].argmax(1), qy)  # the shipped model is the pixel centroid
    session = ort.InferenceSession(str(tmp_path / "model.onnx"))
    onnx = session.run(["logits"], {"images": probe.numpy()})[0]
    assert np.abs(onnx - ts.numpy()).max() <= 1e-4
    assert (onnx.argmax(1) == ts.numpy().argmax(1)).all()


def noise_set(per_class: int, seed: int) -> ImageSet:
    """Classes of pure noise: neither classifier has anything to go on, so verdicts vary."""
    rng = np.random.default_rng(seed)
    images = (255 * rng.random((WAY * per_class, 1, SIZE, SIZE))).astype(np.uint8)
    index = [np.arange(c * per_class, (c + 1) * per_class) for c in range(WAY)]
    names = [f"n{c}" for c in range(WAY)]
    return ImageSet(names, names, images, index)


@pytest.mark.parametrize(
    ("kind", "seed"), [("bright", 1), ("bright", 5), ("noise", 1), ("noise", 2), ("noise", 3)]
)
def test_stopping_early_gives_the_verdict_of_all_folds(kind: str, seed: int) -> None:
    state = tiny_state()
    encode = state.ranked()[0].encode
    images = brightness_set(4, seed) if kind == "bright" else noise_set(4, seed)
    x, y = tensors(images)
    inner = TINY_SEARCH.final_inner
    assert inner is not None
    model, pixels, n = 0.0, 0.0, 0
    for s in support_splits(x, y, WAY, folds=3):  # the reference: every fold adapted
        w = adapt_encode(state.supernet, encode, s.x, s.y, WAY, inner)
        model += score(encode, w, s.hx, s.hy)[0] * len(s.hy)
        pixels += pixel_centroid_acc(s.x, s.y, s.hx, s.hy, WAY) * len(s.hy)
        n += len(s.hy)
    check = check_pixel_floor(state.supernet, encode, x, y, WAY, inner)
    assert check is not None and 1 <= check.folds <= 3
    assert check.held_out == check.folds * WAY
    assert check.use_pixels == (pixels / n > model / n + 1e-9)
    if check.folds == 3:
        assert check.model_acc == pytest.approx(model / n)
        assert check.pixel_acc == pytest.approx(pixels / n)


@pytest.mark.parametrize("fallback", [False, True])
def test_the_subnet_stays_when_the_check_is_off_or_cannot_run(fallback: bool) -> None:
    state = tiny_state()
    task = brightness_task(shot=1 if fallback else 3)  # 1 shot: no held-out image
    cfg = dataclasses.replace(TINY_SEARCH, pixel_fallback=fallback)
    outcome = pipeline.search_task(state, task, cfg, device=CPU)
    assert outcome.metrics["model"] == "subnet" and outcome.pixels is None
    assert outcome.metrics["floors"]["check"] is None
