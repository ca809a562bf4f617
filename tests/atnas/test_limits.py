"""Cost limits: the cheapest cost of a space (checked by brute force), predicates, errors."""

from __future__ import annotations

import itertools

import pytest
import torch

from atnas import pipeline
from atnas.cost import arch_cost
from atnas.errors import ConfigError, ConstraintError
from atnas.latency import LatencyMeter
from atnas.limits import CostLimits, cheapest, check_feasible, within
from atnas.space import Encode, LayerChoice, SearchSpace
from atnas.supernet import Supernet
from tests.atnas.conftest import TINY_SEARCH, TINY_SPACE, synthetic_task, tiny_state

CPU = torch.device("cpu")


def _all_encodes(space: SearchSpace) -> list[Encode]:
    choices = [LayerChoice(o, w) for o in space.ops for w in space.widths]
    every = (Encode(t) for t in itertools.product(choices, repeat=space.num_layers))
    return [e for e in every if space.is_valid(e)]


@pytest.mark.parametrize("n_way", [2, 5, 20])
def test_cheapest_equals_brute_force(n_way: int) -> None:
    space = SearchSpace(num_layers=2, widths=(8, 16, 24))
    costs = [arch_cost(space, e, 12, n_way) for e in _all_encodes(space)]
    low = cheapest(space, 12, n_way)
    assert low.macs == min(c.flops for c in costs)
    assert low.params == min(c.params for c in costs)


def test_within_bounds_macs_and_params_and_measures_latency_only_when_asked() -> None:
    space = TINY_SPACE
    encodes = _all_encodes(SearchSpace(num_layers=3, ops=("conv3x3", "identity"), widths=(8, 16)))
    limit = sorted(arch_cost(space, e, 8, 3).flops for e in encodes)[len(encodes) // 2]
    ok = within(space, CostLimits(max_macs=limit), 8, 3)
    for e in encodes:
        assert ok(e) == (arch_cost(space, e, 8, 3).flops <= limit)
    measured: list[Encode] = []

    def latency(e: Encode) -> float:
        measured.append(e)
        return 1.0 if e.layers[-1].width == 8 else 5.0

    fast = within(space, CostLimits(max_latency_ms=2.0), 8, 3, latency)
    assert [fast(e) for e in encodes] == [e.layers[-1].width == 8 for e in encodes]
    assert measured
    with pytest.raises(ConfigError, match="latency"):
        within(space, CostLimits(max_latency_ms=2.0), 8, 3)


@pytest.mark.parametrize(
    "kwargs", [{"max_macs": 0}, {"max_params": -5}, {"max_latency_ms": float("nan")}]
)
def test_bad_limits(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        CostLimits(**kwargs)


def test_an_impossible_limit_names_the_smallest_cost() -> None:
    low = cheapest(TINY_SPACE, 8, 3)
    with pytest.raises(ConstraintError, match=f"{low.macs} MACs"):
        check_feasible(TINY_SPACE, CostLimits(max_macs=low.macs - 1), 8, 3)
    with pytest.raises(ConstraintError, match=f"{low.params} parameters"):
        check_feasible(TINY_SPACE, CostLimits(max_params=low.params - 1), 8, 3)
    check_feasible(TINY_SPACE, CostLimits(max_macs=low.macs, max_params=low.params), 8, 3)


def test_latency_meter_caches_and_is_positive() -> None:
    meter = LatencyMeter(Supernet(TINY_SPACE), image_size=8, n_way=3, repeats=3, warmup=1)
    e = tiny_state().best_encode()
    first = meter(e)
    assert first > 0 and meter(e) == first and list(meter.cache) == [e]


def test_search_task_honours_limits_and_reports_cost_front_and_floors() -> None:
    state = tiny_state()
    task = synthetic_task(way=3, shot=2, query=3)
    costs = sorted(arch_cost(TINY_SPACE, m.encode, 8, 3).flops for m in state.population)
    limit = costs[len(costs) // 2]
    out = pipeline.search_task(
        state, task, TINY_SEARCH, limits=CostLimits(max_macs=limit), device=CPU
    )
    m = out.metrics
    assert m["cost"]["macs"] <= limit
    assert m["cost"]["macs"] == arch_cost(TINY_SPACE, out.result.encode, 8, 3).flops
    assert m["cost"]["latency_ms"] > 0 and m["limits"]["max_macs"] == limit
    assert m["front"] and all(p["macs"] <= limit for p in m["front"])
    floors = m["floors"]
    assert set(floors["support"]) == {"pixel_centroid", "feature_prototype", "model"}
    assert floors["query"]["model"] == out.query_acc
    best = max(floors["query"]["pixel_centroid"], floors["query"]["feature_prototype"])
    assert floors["model_beats_floors"] == (out.query_acc >= best)
    with pytest.raises(ConstraintError, match="MACs"):
        pipeline.search_task(state, task, TINY_SEARCH, limits=CostLimits(max_macs=10), device=CPU)
    with pytest.raises(ConstraintError, match="ms at batch 1"):
        pipeline.search_task(
            state, task, TINY_SEARCH, limits=CostLimits(max_latency_ms=1e-9), device=CPU
        )
