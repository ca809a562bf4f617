"""Nearest centroid on pixels as a second expert multiplied into the adapted subnet
(atnas.floors.fused_log_probs, ``SearchConfig.pixel_expert``), end to end: the scale that
exists at one shot, the fused check, a search job's model files."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from atnas import pipeline
from atnas.errors import ConfigError
from atnas.export import load_exported
from atnas.fitness import adapt_encode, support_splits
from atnas.floors import (
    FloorCheck,
    centroid_scores,
    centroid_spread_scale,
    check_pixel_floor,
    fused_log_probs,
)
from atnas.search import SearchConfig
from atnas.supernet import logits
from tests.atnas.conftest import TINY_SEARCH, tiny_state
from tests.atnas.test_fallback import WAY, brightness_task, noise_set, tensors

CPU = torch.device("cpu")


def test_the_spread_scale_exists_at_one_shot_and_is_one_over_the_mean_pair_distance() -> None:
    x = torch.zeros(3, 1, 2, 2)
    x[1, 0, 0, 0] = 1.0  # squared distances: 0-1 = 1, 0-2 = 4, 1-2 = 1 + 4 = 5
    x[2, 0, 1, 1] = 2.0
    y = torch.arange(3)
    assert centroid_spread_scale(x, y, 3) == pytest.approx(3 / (1 + 4 + 5))
    same = torch.zeros(2, 1, 2, 2)  # identical class means: no spread, a finite scale
    assert centroid_spread_scale(same, torch.arange(2), 2) == 1.0


def test_weight_zero_is_the_subnet_and_a_large_weight_the_pixel_centroid() -> None:
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(8, 1, 4, 4, generator=g), torch.arange(8) % 4
    hx = torch.rand(30, 1, 4, 4, generator=g)
    model = torch.randn(30, 4, generator=g) * 3
    alone = fused_log_probs(model, x, y, hx, 4, 0.0)
    assert torch.allclose(alone, torch.log_softmax(model, 1))
    pixels = centroid_scores(x.flatten(1), y, hx.flatten(1), 4).argmax(1)
    assert torch.equal(fused_log_probs(model, x, y, hx, 4, 1e4).argmax(1), pixels)
    half = fused_log_probs(model, x, y, hx, 4, 1.0)  # somewhere between: both matter
    assert half.shape == (30, 4) and torch.isfinite(half).all()


def by_hand(seed: int) -> tuple[FloorCheck, FloorCheck, float, float, int]:
    """The fused check, the three-way check, and the references for both computed by hand on
    every fold: the subnet's and the fused model's held-out accuracy, the images scored."""
    state = tiny_state()
    encode = state.ranked()[0].encode
    x, y = tensors(noise_set(4, seed))
    inner = TINY_SEARCH.final_inner
    assert inner is not None
    model, fused, n = 0, 0, 0
    for s in support_splits(x, y, WAY, folds=3):
        w = adapt_encode(state.supernet, encode, s.x, s.y, WAY, inner)
        with torch.no_grad():
            out = logits(s.hx, encode, w)
        model += int((out.argmax(1) == s.hy).sum())
        fused += int((fused_log_probs(out, s.x, s.y, s.hx, WAY, 2.0).argmax(1) == s.hy).sum())
        n += len(s.hy)
    as_model = check_pixel_floor(
        state.supernet, encode, x, y, WAY, inner, stop_early=False, pixel_expert=2.0
    )
    three = check_pixel_floor(state.supernet, encode, x, y, WAY, inner, also_fused=2.0)
    assert as_model is not None and three is not None
    return as_model, three, model / n, fused / n, n


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_fused_and_three_way_checks_score_their_models_on_every_fold(seed: int) -> None:
    check, three, model, fused, n = by_hand(seed)
    assert check.folds == 3 and check.held_out == n
    assert check.model_acc == pytest.approx(fused)  # the fused model stands for the subnet
    assert three.folds == 3  # no early stop with three candidates
    assert three.model_acc == pytest.approx(model)
    assert three.fused_acc == pytest.approx(fused)


def test_a_one_shot_search_ships_the_subnet_times_the_pixels(tmp_path: Path) -> None:
    # brightness classes: the group-normalised subnet cannot tell them apart, the pixels can;
    # at one shot the check cannot run, so only the fused model gets them right
    state, task = tiny_state(), brightness_task(shot=1, query=5)
    cfg = dataclasses.replace(TINY_SEARCH, pixel_fallback=True, pixel_expert=2.0)
    outcome = pipeline.search_task(state, task, cfg, device=CPU)
    m = outcome.metrics
    assert m["model"] == outcome.model_kind == "subnet_x_pixels" and m["pixel_expert"] == 2.0
    assert m["floors"]["check"] is None  # nothing to hold out at one shot
    x, y = tensors(task.support)
    assert task.query is not None
    qx, qy = tensors(task.query)
    with torch.no_grad():
        lp = fused_log_probs(
            logits(qx, outcome.result.encode, outcome.result.weights), x, y, qx, WAY, 2.0
        )
    assert outcome.query_acc == pytest.approx(float((lp.argmax(1) == qy).float().mean()))
    assert outcome.query_acc > m["floors"]["query"]["subnet"]

    pipeline.export_outcome(tmp_path, state, outcome)
    info = json.loads((tmp_path / "model.json").read_text())
    assert info["kind"] == "subnet_x_pixels" and info["pixel_expert"] == 2.0
    assert "times those of nearest centroid" in (tmp_path / "README.md").read_text()
    probe = torch.cat([qx, torch.rand(6, 1, qx.shape[-1], qx.shape[-1])])
    with torch.no_grad():
        ts = load_exported(tmp_path / "model.ts")(probe)
        want = fused_log_probs(
            logits(probe, outcome.result.encode, outcome.result.weights), x, y, probe, WAY, 2.0
        )
    assert torch.allclose(ts, want, atol=1e-4)  # the model files hold both experts
    session = ort.InferenceSession(str(tmp_path / "model.onnx"))
    onnx = session.run(["logits"], {"images": probe.numpy()})[0]
    assert np.abs(onnx - ts.numpy()).max() <= 1e-4


def test_the_fallback_still_ships_the_pixels_alone_when_they_beat_the_fused_model() -> None:
    state, task = tiny_state(), brightness_task(shot=3)
    cfg = dataclasses.replace(TINY_SEARCH, pixel_fallback=True, pixel_expert=0.01)
    outcome = pipeline.search_task(state, task, cfg, device=CPU)
    assert outcome.metrics["model"] == "pixel_centroid" and outcome.pixel_expert is None
    assert outcome.metrics["floors"]["check"]["use_pixels"] is True


def test_a_pixel_expert_must_be_finite_and_not_negative() -> None:
    for bad in (-0.1, float("inf"), float("nan")):
        with pytest.raises(ConfigError, match="pixel_expert"):
            SearchConfig(pixel_expert=bad)
        with pytest.raises(ConfigError, match="check_fused"):
            SearchConfig(check_fused=bad)


def test_the_check_chooses_the_most_accurate_of_three_with_ties_to_the_simplest() -> None:
    assert FloorCheck(0.8, 0.7, 3, 12).choice == "model"  # no fused figure: two candidates
    assert FloorCheck(0.8, 0.7, 3, 12, fused_acc=0.8).choice == "model"  # a tie: the subnet
    assert FloorCheck(0.8, 0.7, 3, 12, fused_acc=0.9).choice == "fused"
    assert FloorCheck(0.8, 0.9, 3, 12, fused_acc=0.9).choice == "fused"  # a tie: the fused one
    assert FloorCheck(0.8, 0.95, 3, 12, fused_acc=0.9).choice == "pixels"
    assert FloorCheck(0.8, 0.95, 3, 12, fused_acc=0.9).to_json()["use_pixels"] is True


def test_a_search_whose_check_picks_the_fused_model_ships_it() -> None:
    # 3 shots of brightness classes: the fused model and the pixels get every held-out image
    # right, the subnet does not; a tie between those two goes to the fused one
    state, task = tiny_state(), brightness_task(shot=3)
    cfg = dataclasses.replace(TINY_SEARCH, pixel_fallback=True, check_fused=2.0)
    outcome = pipeline.search_task(state, task, cfg, device=CPU)
    check = outcome.metrics["floors"]["check"]
    assert check["choice"] == "fused" and check["fused_acc"] > check["model_acc"]
    assert outcome.metrics["model"] == "subnet_x_pixels" and outcome.pixel_expert == 2.0
    off = pipeline.search_task(state, task, dataclasses.replace(cfg, check_fused=0.0), device=CPU)
    assert off.metrics["model"] == "pixel_centroid"  # round 6's check: subnet or pixels
