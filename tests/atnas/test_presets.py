"""Presets exist, fit together, and the ``paper`` preset runs on a CPU (tiny overrides)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import torch

from atnas import pipeline
from atnas.cost import arch_cost
from atnas.errors import ConfigError
from atnas.learner import InnerConfig
from atnas.limits import CostLimits, within
from atnas.metastate import MetaState
from atnas.modelcard import model_card
from atnas.presets import FOUND_128, FOUND_SEP, FOUND_SMALL, PRESETS, get_preset
from atnas.search import SearchConfig
from atnas.space import Encode
from tests.atnas.conftest import synthetic_images, synthetic_task


def _short_run(preset: str, iterations: int, **extra: Any) -> MetaState:
    """A few meta-iterations of ``preset`` on tiny synthetic images, on the CPU."""
    return pipeline.meta_train(
        synthetic_images(16, 3, size=12, seed=0),
        preset,
        iterations=iterations,
        budget_seconds=None,
        meta_batch=2,
        query=1,
        image_size=12,
        inner=InnerConfig(steps=1, lr=0.1),
        device=torch.device("cpu"),
        **extra,
    )


@pytest.mark.parametrize("name", sorted(PRESETS))  # the schema's list: tests/workers/test_specs.py
def test_preset_exists_and_is_consistent(name: str) -> None:
    p = get_preset(name)
    assert p.name == name and PRESETS[name] is p
    assert 3 <= p.space.num_layers <= 6
    # search64 searches widths of a slimmable Conv-4; wide and paper ops and widths
    slimmable = name in {"dense128", "search64", "late128", "fixed128", "small128"}
    slimmable = slimmable and p.space.ops == ("conv3x3",)
    separable = name in {"default", "smallsep", "tinysep"}
    separable = separable and p.space.ops == ("conv3x3", "sepconv3x3")
    assert len(p.space.ops) >= 6 or slimmable or separable
    assert len(p.space.widths) >= 2
    assert p.space.conv4() in {p.space.conv4()}  # Conv-4 is a point of every preset's space
    assert p.search.seed_top <= p.search.population
    assert 0.0 < p.fitness_fraction < 1.0
    fixed = name in {"default", "dense128", "fixed128", "small128", "smallsep", "tinysep"}
    # one net: no EA
    assert (p.meta.fixed_encode is None) == (not fixed)


def test_late128_explores_search64s_space_and_widens_past_it_from_copies() -> None:
    late, search64 = get_preset("late128"), get_preset("search64")
    assert late.space.up_to(late.meta.explore_width) == search64.space
    assert late.space.max_width == 128 and late.meta.widen_init == "copy"
    assert late.meta.widen_limit == "conv4" and search64.meta.widen_limit == "pick"


def test_the_default_is_smallseps_net_trained_alone() -> None:
    default, sep = get_preset("default"), get_preset("smallsep")
    # the same run under two names (round 32 made smallsep the default)
    assert (default.space, default.meta, default.search) == (sep.space, sep.meta, sep.search)
    assert default.meta.fixed_encode == FOUND_SEP
    assert pipeline.meta_config("default").meta_lr == 3e-3
    assert pipeline.meta_config("default").meta_batch == 4  # rounds 41-43; the library's is 8
    assert pipeline.meta_config("tinysep").meta_batch == 8  # never screened at 4


def test_dense128_is_fixed128s_net_at_3e_3() -> None:
    dense, fixed = get_preset("dense128"), get_preset("fixed128")
    assert dense.space == fixed.space and dense.search == fixed.search
    # the same run but for the meta-rate (round 16 raised it to 3e-3)
    assert dense.meta == dataclasses.replace(fixed.meta, meta_lr=3e-3)
    assert fixed.meta.meta_lr == 1e-3 and dense.meta.fixed_encode == FOUND_128


def test_search_settings_are_refused_for_a_fixed_net_preset() -> None:
    for preset in ("default", "dense128", "fixed128", "small128", "smallsep", "tinysep"):
        with pytest.raises(ConfigError, match=f"preset '{preset}' meta-trains one fixed net"):
            pipeline.meta_config(preset, focus=0.5, final_widen=0.1)
    with pytest.raises(ConfigError, match="focus must be in"):  # a range error comes first
        pipeline.meta_config("default", focus=2.0)
    assert pipeline.meta_config("search64", focus=0.5).focus == 0.5
    own = pipeline.meta_config("default", fixed_encode=None, focus=0.5)  # a search of its own
    assert own.fixed_encode is None and own.focus == 0.5


def test_fixed128_trains_late128s_usual_pick_alone_and_its_search_adapts_only_that_net() -> None:
    fixed, late = get_preset("fixed128"), get_preset("late128")
    net = fixed.meta.fixed_encode
    assert net == FOUND_128 and fixed.space == late.space and fixed.space.is_valid(net)
    conv4_64 = late.space.up_to(64).conv4()
    assert arch_cost(fixed.space, net, 28, 5).flops <= arch_cost(fixed.space, conv4_64, 28, 5).flops
    state = _short_run("fixed128", 2)
    assert state.config.preset == "fixed128" and state.iteration == 2
    assert [m.encode for m in state.population] == [net]
    cfg = pipeline.search_defaults(state)  # one trained net: adapt it, search nothing
    assert (cfg.population, cfg.generations, cfg.seed_top) == (1, 0, 1)
    assert pipeline.search_defaults(state, CostLimits(max_macs=10**6)) == fixed.search
    task = synthetic_task(way=5, shot=1, query=1, size=12)
    outcome = pipeline.search_task(state, task, device=torch.device("cpu"))
    assert outcome.result.encode == net and outcome.metrics["warnings"] == []


def test_a_limit_that_rules_out_the_one_trained_net_comes_with_a_warning() -> None:
    state = _short_run("small128", 1)
    net = get_preset("small128").meta.fixed_encode
    task = synthetic_task(way=5, shot=1, query=1, size=12)
    limit = arch_cost(state.space, net, 12, 5).flops - 1
    outcome = pipeline.search_task(
        state, task, limits=CostLimits(max_macs=limit), device=torch.device("cpu")
    )
    assert outcome.result.encode != net and outcome.metrics["cost"]["macs"] <= limit
    [warning] = outcome.metrics["warnings"]
    assert f"meta-trained one net ({net.key()}" in warning
    assert f"max_macs {limit}" in warning and "never meta-trained as such" in warning
    card = model_card(
        state.space,
        outcome.result.encode,
        arch_cost(state.space, outcome.result.encode, 12, 5),
        outcome.classes,
        12,
        outcome.metrics,
        {},
    )
    assert f"**Warning:** {warning}." in card


def test_the_warnings_advice_names_the_fixed_net_presets_that_fit_with_derived_costs() -> None:
    state = _short_run("small128", 1)
    costs = {
        name: arch_cost(PRESETS[name].space, PRESETS[name].meta.fixed_encode, 12, 5)  # type: ignore[arg-type]
        for name in pipeline.FIXED_NET_PRESETS
    }
    assert costs["tinysep"].flops < costs["default"].flops < costs["dense128"].flops
    between = CostLimits(max_macs=costs["default"].flops - 1)
    advice = pipeline.fixed_net_advice(state, between, 5)
    tiny = costs["tinysep"]
    assert f"'tinysep' ({tiny.flops / 1e6:.2f}M MACs, {tiny.params:,} params)" in advice
    assert "'default'" not in advice and "'dense128'" not in advice
    assert "within these limits" in advice
    unbounded = pipeline.fixed_net_advice(state, CostLimits(), 5)
    assert all(f"'{name}' (" in unbounded for name in costs) and "within" not in unbounded
    by_params = pipeline.fixed_net_advice(state, CostLimits(max_params=tiny.params), 5)
    assert "'tinysep'" in by_params and "'dense128'" not in by_params
    nothing = pipeline.fixed_net_advice(state, CostLimits(max_macs=1000), 5)
    assert nothing.startswith("no fixed-net preset fits these limits")


def test_small128_trains_a_net_within_conv4_32s_cost_alone() -> None:
    small, late = get_preset("small128"), get_preset("late128")
    net = small.meta.fixed_encode
    assert net == FOUND_SMALL and small.space == late.space and small.space.is_valid(net)
    conv4_32 = late.space.up_to(32).conv4()
    macs = arch_cost(small.space, net, 28, 5).flops
    assert macs <= 0.8 * arch_cost(small.space, conv4_32, 28, 5).flops  # 2.10M vs 2.70M
    state = _short_run("small128", 1)
    assert [m.encode for m in state.population] == [net]
    assert pipeline.search_defaults(state).population == 1  # adapts that net, searches nothing


def trains_and_adapts_its_one_net(preset: str, net: Encode) -> None:
    """One meta-training iteration of ``preset`` trains ``net`` alone, and a search job on it
    adapts that net without a search or a warning."""
    state = _short_run(preset, 1)
    assert [m.encode for m in state.population] == [net]
    assert pipeline.search_defaults(state).population == 1  # adapts that net, searches nothing
    task = synthetic_task(way=5, shot=1, query=1, size=12)
    outcome = pipeline.search_task(state, task, device=torch.device("cpu"))
    assert outcome.result.encode == net and outcome.metrics["warnings"] == []


def test_smallsep_trains_dense128s_widths_separable_under_conv4_32s_cost() -> None:
    sep, dense = get_preset("smallsep"), get_preset("dense128")
    net = sep.meta.fixed_encode
    assert net is not None and sep.space.is_valid(net)
    assert [c.width for c in net.layers] == [c.width for c in FOUND_128.layers]
    assert [c.op for c in net.layers] == ["conv3x3"] + ["sepconv3x3"] * 3
    assert sep.meta.meta_lr == dense.meta.meta_lr == 3e-3
    conv4_32 = sep.space.up_to(32).conv4()
    cost, c32 = arch_cost(sep.space, net, 28, 5), arch_cost(sep.space, conv4_32, 28, 5)
    assert cost.flops <= 0.56 * c32.flops  # 1.49M vs 2.70M MACs
    assert cost.params <= 1.08 * c32.params  # 30,629 vs 28,485 parameters
    trains_and_adapts_its_one_net("smallsep", net)


def test_tinysep_trains_a_separable_net_under_conv4_16s_cost() -> None:
    tiny, sep = get_preset("tinysep"), get_preset("smallsep")
    net, bigger = tiny.meta.fixed_encode, sep.meta.fixed_encode
    assert net is not None and bigger is not None and tiny.space == sep.space
    assert tiny.space.is_valid(net) and sep.meta.meta_lr == 3e-3
    assert tiny.meta.meta_lr == 6e-3  # rounds 39-40: one step above smallsep's
    assert [c.op for c in net.layers] == [c.op for c in bigger.layers]
    assert [c.width for c in net.layers] == [16, 32, 64, 128]
    conv4_16 = tiny.space.up_to(16).conv4()
    cost, c16 = arch_cost(tiny.space, net, 28, 5), arch_cost(tiny.space, conv4_16, 28, 5)
    assert cost.flops <= 0.73 * c16.flops  # 0.54M vs 0.75M MACs
    assert cost.params <= 1.81 * c16.params  # 13,269 vs 7,333 parameters
    trains_and_adapts_its_one_net("tinysep", net)


def test_a_limit_the_one_trained_net_meets_adapts_that_net_without_a_search() -> None:
    state = _short_run("smallsep", 1)
    net = get_preset("smallsep").meta.fixed_encode
    assert net is not None
    task = synthetic_task(way=5, shot=1, query=1, size=12)
    macs = arch_cost(state.space, net, 12, 5).flops
    full = get_preset("smallsep").search
    fits = within(state.space, CostLimits(max_macs=macs), 12, 5)
    assert pipeline.search_defaults(state, CostLimits(max_macs=macs), fits).population == 1
    too_tight = within(state.space, CostLimits(max_macs=macs - 1), 12, 5)
    assert pipeline.search_defaults(state, CostLimits(max_macs=macs - 1), too_tight) == full
    outcome = pipeline.search_task(
        state, task, limits=CostLimits(max_macs=macs), device=torch.device("cpu")
    )
    assert outcome.result.encode == net and outcome.metrics["warnings"] == []
    assert outcome.metrics["search_config"]["population"] == 1
    assert outcome.metrics["cost"]["macs"] == macs


def test_paper_preset_is_bigger_than_default() -> None:
    paper, default = get_preset("paper"), get_preset("search64")
    assert paper.space.max_width > default.space.max_width
    assert (paper.meta.budget_seconds or 0) > (default.meta.budget_seconds or 0)


def test_get_preset_for_rgb_and_unknown_name() -> None:
    assert get_preset("tiny", channels=3).space.in_channels == 3
    assert get_preset("tiny").space.in_channels == 1
    with pytest.raises(ConfigError, match="unknown preset"):
        get_preset("huge")


def test_paper_preset_smoke_on_cpu() -> None:
    state = _short_run("paper", 1, population=2, offspring=1, ea_tasks=1)
    assert state.iteration == 1
    assert state.space == get_preset("paper").space
    assert all(m.fitness is not None for m in state.population)
    cfg: SearchConfig = dataclasses.replace(
        get_preset("paper").search,
        population=2,
        generations=1,
        seed_top=1,
        views=1,
        folds=1,
        inner=InnerConfig(steps=1, lr=0.1),
        final_inner=InnerConfig(steps=1, lr=0.1),
    )
    task = synthetic_task(way=5, shot=1, query=1, size=12)
    outcome = pipeline.search_task(state, task, cfg, device=torch.device("cpu"))
    assert state.space.is_valid(outcome.result.encode)
    assert outcome.query_acc is not None
