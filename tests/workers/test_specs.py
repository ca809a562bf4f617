"""Job specs map onto atnas configurations in one place."""

from __future__ import annotations

import pydantic
import pytest

from atnas.meta import MetaAlgorithm
from atnas.search import SearchConfig
from service.schemas import MetaTrainSpec, SearchSpec
from workers.specs import image_config, meta_train_overrides, search_config


def test_meta_train_overrides_carry_every_setting() -> None:
    spec = MetaTrainSpec(
        datasets=["d"],
        way=7,
        shot=3,
        query=4,
        rotations=False,
        focus=0.25,
        final_pick="frugal",
        final_widen=0.2,
        widen_limit="conv4",
        task_styles=0.25,
        algorithm="reptile",
        preset="search64",
        budget_seconds=42,
        iterations=9,
        seed=5,
        image_size=32,
        channels=3,
    )
    o = meta_train_overrides(spec)
    assert o == {
        "way": 7,
        "shot": 3,
        "query": 4,
        "rotations": False,
        "focus": 0.25,
        "final_pick": "frugal",
        "final_widen": 0.2,
        "widen_limit": "conv4",
        "task_styles": 0.25,
        "image_size": 32,
        "algorithm": MetaAlgorithm.REPTILE,
        "budget_seconds": 42,
        "iterations": 9,
        "seed": 5,
    }
    img = image_config(spec)
    assert (img.image_size, img.channels) == (32, 3)
    default = meta_train_overrides(MetaTrainSpec(datasets=["d"]))
    from_preset = {"focus", "final_pick", "final_widen", "widen_limit", "task_styles"}
    assert not from_preset & set(default)  # the preset's


def test_search_settings_are_refused_for_a_preset_without_a_search() -> None:
    from atnas.presets import PRESETS
    from service.schemas import FIXED_NET_PRESETS

    assert set(FIXED_NET_PRESETS) == {n for n, p in PRESETS.items() if p.meta.fixed_encode}
    for preset in FIXED_NET_PRESETS:
        with pytest.raises(pydantic.ValidationError, match=r"one fixed net.*focus"):
            MetaTrainSpec(datasets=["d"], preset=preset, focus=0.5)  # type: ignore[arg-type]
    spec = MetaTrainSpec(datasets=["d"], preset="search64", focus=0.5, widen_limit="conv4")
    assert meta_train_overrides(spec)["focus"] == 0.5


def test_focus_out_of_range_is_refused() -> None:
    for bad in (-0.1, 1.0):
        with pytest.raises(pydantic.ValidationError, match="focus"):
            MetaTrainSpec(datasets=["d"], focus=bad)
    with pytest.raises(pydantic.ValidationError, match="final_pick"):
        MetaTrainSpec(datasets=["d"], final_pick="cheapest")  # type: ignore[arg-type]
    for bad in (-0.1, 1.5):
        with pytest.raises(pydantic.ValidationError, match="final_widen"):
            MetaTrainSpec(datasets=["d"], final_widen=bad)
        with pytest.raises(pydantic.ValidationError, match="task_styles"):
            MetaTrainSpec(datasets=["d"], task_styles=bad)


def test_search_config_keeps_defaults_and_applies_budget() -> None:
    base = SearchConfig()
    cfg = search_config(SearchSpec(supernet="s", dataset="d", budget_seconds=7, seed=3))
    assert cfg.budget_seconds == 7 and cfg.seed == 3
    assert cfg.population == base.population and cfg.generations == base.generations
    small = search_config(SearchSpec(supernet="s", dataset="d", population=2, generations=1))
    assert small.population == 2 and small.seed_top == 2 and small.generations == 1
    assert cfg.pixel_fallback is base.pixel_fallback is True


def test_a_search_spec_can_turn_the_pixel_fallback_off() -> None:
    spec = SearchSpec(supernet="s", dataset="d", pixel_fallback=False)
    assert search_config(spec).pixel_fallback is False
    assert SearchSpec.model_validate({"supernet": "s", "dataset": "d"}).pixel_fallback is True


def test_a_search_spec_sets_the_pixel_expert() -> None:
    default = SearchSpec.model_validate({"supernet": "s", "dataset": "d"})
    assert default.pixel_expert == SearchConfig().pixel_expert == 0.0  # the schema keeps up
    assert search_config(default).pixel_expert == 0.0
    on = SearchSpec(supernet="s", dataset="d", pixel_expert=2)
    assert search_config(on).pixel_expert == 2.0


def test_the_api_offers_exactly_the_presets_there_are() -> None:
    from typing import get_args

    from atnas.presets import PRESETS

    offered = get_args(MetaTrainSpec.model_fields["preset"].annotation)
    assert set(offered) == set(PRESETS) and "fixed128" in offered
    assert MetaTrainSpec(datasets=["d"], preset="fixed128").preset == "fixed128"
