"""Per-task search: query labels never leak, seeded determinism, budgets, constraints."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from atnas import pipeline
from atnas.data import ImageSet, TaskData
from atnas.errors import ConfigError
from atnas.fitness import Fitness
from atnas.learner import predict
from atnas.search import Generation, SearchConfig, SearchResult, search, seed_population
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
    assert r.fitness.value == max(f.value for f in r.scored.values())
    assert r.history[-1].best == pytest.approx(r.fitness.value)
    assert r.history[-1].best_encode == r.encode.key()
    assert [g.best for g in r.history] == sorted(g.best for g in r.history)  # elitist: never worse
    assert r.evaluations == len(r.scored) == r.history[-1].evaluations
    assert r.evaluations <= TINY_SEARCH.population * (TINY_SEARCH.generations + 1)
    assert r.weights["head.w"].shape == (3, r.encode.layers[-1].width)
    assert 0.0 <= r.support_acc <= 1.0
    m = r.metrics()
    assert Encode.from_json(m["encode"]) == r.encode and len(m["generations"]) == 3
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
        assert n_way == 3 and inner == TINY_SEARCH.inner
        for s in splits:  # every image an evaluator can see is a support image
            assert {tuple(r.flatten().tolist()) for r in torch.cat([s.x, s.hx])} <= support_rows

        def by_width(encodes):
            calls.append(list(encodes))
            return [Fitness(sum(c.width for c in e.layers) / 100, 0.0) for e in encodes]

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


def test_prior_strength_pulls_the_choice_towards_the_meta_population() -> None:
    state = tiny_state()
    task = synthetic_task(way=3, shot=3, query=2)
    x, y, n = pipeline.task_tensors(task)
    ranked = [m.encode for m in state.ranked()]
    # an arbitrary prior: the last-ranked member is believed best across tasks
    favourite = ranked[-1]
    prior = {e: (0.9 if e == favourite else 0.1) for e in ranked}
    strong = dataclasses.replace(
        TINY_SEARCH, prior_strength=1e6, seed_top=len(ranked), population=len(ranked)
    )
    chosen = search(state.supernet, ranked, x, y, n, strong, prior=prior)
    assert chosen.encode == favourite
    # without a prior (or with zero strength) the support fitness alone decides, as before
    off = dataclasses.replace(strong, prior_strength=0.0)
    a = search(state.supernet, ranked, x, y, n, off, prior=prior)
    b = search(state.supernet, ranked, x, y, n, off)
    assert a.encode == b.encode and [g.best for g in a.history] == [g.best for g in b.history]
