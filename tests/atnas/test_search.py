"""Per-task search: query labels never leak, seeded determinism, budgets, cancels, constraints."""

from __future__ import annotations

import dataclasses
import itertools
import time
from dataclasses import replace

import numpy as np
import pytest
import torch

from atnas import pipeline
from atnas.data import ImageSet, TaskData
from atnas.errors import Cancelled, ConfigError
from atnas.fitness import Fitness
from atnas.learner import predict
from atnas.search import (
    CHECK_EVERY_S,
    Generation,
    SearchConfig,
    SearchResult,
    search,
    seed_population,
    shrunk_values,
)
from atnas.space import Encode
from tests.atnas.conftest import TINY_SEARCH, TINY_SPACE, synthetic_task, tiny_state

CPU = torch.device("cpu")


def _trace(r: SearchResult) -> tuple:
    """Everything a search decided, without wall-clock times."""
    history = [(g.generation, g.best, g.mean, g.best_encode, g.evaluations) for g in r.history]
    return r.encode, history, r.fitness, r.evaluations, r.support_acc, dict(r.scored)


def _assert_same_search(a: SearchResult, b: SearchResult) -> None:
    assert _trace(a) == _trace(b)
    assert a.weights.keys() == b.weights.keys()
    for k in a.weights:
        assert torch.equal(a.weights[k], b.weights[k]), k


def _with_query(task: TaskData, query: ImageSet) -> TaskData:
    return TaskData(task.support, query)


@pytest.mark.parametrize("shot", [1, 3])
def test_query_labels_and_images_never_leak_into_the_search(shot: int) -> None:
    state = tiny_state()
    task = synthetic_task(way=3, shot=shot, query=4)
    assert task.query is not None
    base = pipeline.search_task(state, task, TINY_SEARCH, device=CPU)

    # the same query images under permuted labels
    q = task.query
    perm = [2, 0, 1]
    relabelled = ImageSet(q.names, q.groups, q.images, [q.class_index[p] for p in perm])
    permuted = pipeline.search_task(state, _with_query(task, relabelled), TINY_SEARCH, device=CPU)
    # the query replaced by noise (and a different number of images)
    rng = np.random.default_rng(0)
    noise_images = rng.integers(0, 256, (7, *q.images.shape[1:]), dtype=np.uint8)
    noise = ImageSet(
        q.names, q.groups, noise_images, [np.arange(3), np.arange(3, 5), np.arange(5, 7)]
    )
    noisy = pipeline.search_task(state, _with_query(task, noise), TINY_SEARCH, device=CPU)
    no_query = pipeline.search_task(state, TaskData(task.support, None), TINY_SEARCH, device=CPU)

    for other in (permuted, noisy, no_query):
        _assert_same_search(base.result, other.result)
        assert other.classes == base.classes
    # the query *is* read, for the report only: each report matches its own labels
    for outcome, labels in ((base, q), (permuted, relabelled)):
        x = torch.from_numpy(labels.images).float() / 255.0
        y = torch.zeros(len(x), dtype=torch.long)
        for label, rows in enumerate(labels.class_index):
            y[torch.from_numpy(rows)] = label
        pred = predict(outcome.result.encode, outcome.result.weights, x)
        assert outcome.query_acc == pytest.approx((pred == y).float().mean().item())
    assert no_query.query_acc is None and no_query.metrics["query_images"] == 0
    assert base.metrics["query_acc"] == base.query_acc


def test_same_seed_same_search_and_other_seeds_differ() -> None:
    state = tiny_state()
    task = synthetic_task(way=3, shot=2, query=1)
    x, y, n = pipeline.task_tensors(task)
    ranked = [m.encode for m in state.ranked()]
    a = search(state.supernet, ranked, x, y, n, TINY_SEARCH)
    b = search(state.supernet, ranked, x, y, n, TINY_SEARCH)
    _assert_same_search(a, b)
    others = [
        search(state.supernet, ranked, x, y, n, dataclasses.replace(TINY_SEARCH, seed=s))
        for s in (1, 2)
    ]
    assert any(set(o.scored) != set(a.scored) for o in others)


def test_search_result_is_consistent() -> None:
    state = tiny_state()
    before = {k: v.clone() for k, v in state.supernet.state_dict().items()}
    task = synthetic_task(way=3, shot=2, query=1)
    x, y, n = pipeline.task_tensors(task)
    seen: list[Generation] = []
    r = search(
        state.supernet,
        [m.encode for m in state.ranked()],
        x,
        y,
        n,
        TINY_SEARCH,
        on_generation=seen.append,
    )
    assert [g.generation for g in r.history] == [0, 1, 2]
    assert seen == r.history
    assert TINY_SPACE.is_valid(r.encode)
    assert r.fitness == r.scored[r.encode]
    assert r.value == r.values[r.encode] == max(r.values.values())
    assert r.history[-1].best == pytest.approx(r.value)  # progress shows what the result says
    assert r.history[-1].best_encode == r.encode.key()
    assert r.evaluations == len(r.scored) == r.history[-1].evaluations
    assert r.evaluations <= TINY_SEARCH.population * (TINY_SEARCH.generations + 1)
    assert r.weights["head.w"].shape == (3, r.encode.layers[-1].width)
    assert 0.0 <= r.support_acc <= 1.0
    m = r.metrics()
    assert Encode.from_json(m["encode"]) == r.encode and len(m["generations"]) == 3
    assert m["fitness"]["value"] == r.value
    # the front: cheapest first, each point ranked above every cheaper one, the choice on it
    front = m["front"]
    assert front and [p["macs"] for p in front] == sorted(p["macs"] for p in front)
    assert all(a["value"] < b["value"] for a, b in itertools.pairwise(front))
    assert front[-1]["key"] == r.encode.key()
    for k, v in state.supernet.state_dict().items():
        assert torch.equal(v, before[k])  # the meta-supernet is never modified


def test_zero_generations_scores_only_the_seeded_population() -> None:
    state = tiny_state()
    x, y, n = pipeline.task_tensors(synthetic_task(way=3, shot=2, query=1))
    cfg = dataclasses.replace(TINY_SEARCH, generations=0)
    r = search(state.supernet, [m.encode for m in state.ranked()], x, y, n, cfg)
    assert len(r.history) == 1 and r.evaluations == cfg.population


def test_wall_clock_budget_stops_between_generations() -> None:
    state = tiny_state()
    x, y, n = pipeline.task_tensors(synthetic_task(way=3, shot=2, query=1))
    cfg = dataclasses.replace(TINY_SEARCH, generations=50, budget_seconds=1e-6)
    r = search(state.supernet, [m.encode for m in state.ranked()], x, y, n, cfg)
    assert len(r.history) == 1  # generation 0 always runs, then the budget is spent


def test_evaluator_factory_sees_only_support_images_and_constraint_holds() -> None:
    state = tiny_state()
    x, y, n = pipeline.task_tensors(synthetic_task(way=3, shot=2, query=1))
    calls: list[list[Encode]] = []
    support_rows = {tuple(r.flatten().tolist()) for r in x}

    def make_evaluator(splits, n_way, inner):
        # the full fitness and the zero-step proxy
        assert n_way == 3 and inner in (TINY_SEARCH.inner, replace(TINY_SEARCH.inner, steps=0))
        for s in splits:  # every image an evaluator can see is a support image
            assert {tuple(r.flatten().tolist()) for r in torch.cat([s.x, s.hx])} <= support_rows

        def by_width(encodes):
            if inner.steps:
                calls.append(list(encodes))
            acc = [sum(c.width for c in e.layers) / 100 for e in encodes]
            return [Fitness(a, 1.0 - a) for a in acc]

        return by_width

    def narrow_last(e: Encode) -> bool:
        return e.layers[-1].width == 8

    ranked = [m.encode for m in state.ranked()]
    ranked.append(Encode.of(("conv3x3", 8), ("conv3x3", 8), ("conv3x3", 8)))
    r = search(
        state.supernet,
        ranked,
        x,
        y,
        n,
        TINY_SEARCH,
        make_evaluator=make_evaluator,
        constraint=narrow_last,
    )
    assert calls and all(narrow_last(e) for batch in calls for e in batch)
    assert sum(len(b) for b in calls) == len({e for b in calls for e in b})  # each scored once
    assert r.screened > 0  # children were screened by the proxy before the full fitness
    assert r.encode.layers[-1].width == 8
    assert r.fitness.acc == max(f.acc for f in r.scored.values())


def test_seed_population_starts_from_the_top_of_the_meta_population() -> None:
    ranked = [m.encode for m in tiny_state(n_members=4).ranked()]
    cfg = dataclasses.replace(TINY_SEARCH, population=6, seed_top=2)
    pop = seed_population(TINY_SPACE, ranked, cfg, np.random.default_rng(0))
    assert pop[:2] == ranked[:2] and len(pop) == 6 == len(set(pop))
    assert all(TINY_SPACE.is_valid(e) for e in pop)
    with pytest.raises(ConfigError, match="constraint"):
        seed_population(TINY_SPACE, ranked, cfg, np.random.default_rng(0), lambda e: False)


@pytest.mark.parametrize(
    "kwargs", [{"population": 0}, {"generations": -1}, {"seed_top": 0}, {"budget_seconds": 0}]
)
def test_bad_search_config(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        SearchConfig(**kwargs)


def test_shrinkage_follows_the_prior_when_scores_are_noise_and_the_data_when_not() -> None:
    e = [Encode.of(("conv3x3", 8), ("conv3x3", 8), (op, 8)) for op in ("conv3x3", "conv5x5")]
    e += [Encode.of(("conv3x3", 16), ("conv3x3", 8), (op, 8)) for op in ("conv3x3", "conv5x5")]
    prior = {e[0]: 0.9, e[1]: 0.7, e[2]: 0.5, e[3]: 0.3}
    # observations that agree with the prior overall but rank e[1] above e[0], with standard
    # errors far above their spread
    losses = [1.00, 0.99, 1.05, 1.08]
    noisy = {x: Fitness(0.5, loss, loss_se2=1.0) for x, loss in zip(e, losses, strict=True)}
    v = shrunk_values(noisy, prior)
    assert max(v, key=v.__getitem__) == e[0]  # the prior decides
    # the same observations, measured exactly: the data decide
    exact = {x: replace(f, loss_se2=0.0) for x, f in noisy.items()}
    v = shrunk_values(exact, prior)
    assert all(v[x] == pytest.approx(-exact[x].loss) for x in e)
    # no prior: the ranking by observed loss is kept when standard errors are equal
    v = shrunk_values(noisy, {})
    assert sorted(e, key=v.__getitem__) == sorted(e, key=lambda x: -noisy[x].loss)


def test_a_prior_makes_the_search_prefer_the_meta_population_favourite() -> None:
    state = tiny_state()
    x, y, n = pipeline.task_tensors(synthetic_task(way=3, shot=3, query=2))
    ranked = [m.encode for m in state.ranked()]
    cfg = dataclasses.replace(TINY_SEARCH, seed_top=len(ranked), population=len(ranked))
    off = search(state.supernet, ranked, x, y, n, dataclasses.replace(cfg, shrink=False))
    # without shrinkage the observed loss alone decides
    assert off.value == -off.fitness.loss == max(-f.loss for f in off.scored.values())
    with_prior = search(state.supernet, ranked, x, y, n, cfg, prior={e: 0.5 for e in ranked})
    assert with_prior.value == with_prior.values[with_prior.encode]


def _slow_evaluator(seconds_each: float, scored: list[Encode]):
    """An evaluator factory whose full fitness takes ``seconds_each`` per candidate."""

    def make_evaluator(splits, n_way, inner):
        def score(encodes):
            if inner.steps:
                time.sleep(seconds_each * len(encodes))
                scored.extend(encodes)
            return [Fitness(0.5, 1.0 + 0.01 * sum(c.width for c in e.layers)) for e in encodes]

        return score

    return make_evaluator


def test_a_cancel_stops_the_search_inside_a_generation() -> None:
    # A generation of 128 candidates at 10 ms each takes 1.3 s; the cancel comes at 0.3 s.
    state = tiny_state()
    x, y, n = pipeline.task_tensors(synthetic_task(way=3, shot=2, query=1))
    cfg = dataclasses.replace(TINY_SEARCH, population=128, generations=1)
    scored: list[Encode] = []
    started = time.perf_counter()

    def check() -> None:
        if time.perf_counter() - started > 0.3:
            raise Cancelled("stop")

    ranked = [m.encode for m in state.ranked()]
    with pytest.raises(Cancelled):
        search(state.supernet, ranked, x, y, n, cfg, _slow_evaluator(0.01, scored), check=check)
    stopped = time.perf_counter() - started
    assert 0 < len(scored) < 128
    assert stopped < 0.3 + 2 * CHECK_EVERY_S


def test_the_budget_stops_the_search_inside_a_generation_and_keeps_what_was_scored() -> None:
    state = tiny_state()
    x, y, n = pipeline.task_tensors(synthetic_task(way=3, shot=2, query=1))
    cfg = dataclasses.replace(TINY_SEARCH, population=128, generations=3, budget_seconds=0.3)
    scored: list[Encode] = []
    ranked = [m.encode for m in state.ranked()]
    r = search(state.supernet, ranked, x, y, n, cfg, _slow_evaluator(0.01, scored))
    assert 0 < r.evaluations == len(scored) < 128
    assert r.search_seconds < 0.3 + 2 * CHECK_EVERY_S
    assert len(r.history) == 1 and r.history[0].evaluations == r.evaluations
    assert r.encode in r.scored and set(r.scored) == set(scored)
