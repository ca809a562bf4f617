"""Search for a novel task: evolve the architecture from the meta-population, then adapt.

The population is seeded with the fittest encodes of the meta-population plus mutations of
them. Each generation breeds as many children as the population size, scores the new ones from
the support set alone (:mod:`atnas.fitness`) and keeps the fittest distinct encodes. Fitness
values are cached: the inherited weights do not change during a search. After the last
generation (or when the wall-clock budget is spent) the best encode is adapted on the whole
support set.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from atnas.errors import ConfigError
from atnas.evolution import Constraint, breed, mutate, survivors
from atnas.fitness import (
    LOSS_WEIGHT,
    Evaluator,
    EvaluatorFactory,
    Fitness,
    LocalEvaluator,
    adapt_encode,
    support_splits,
)
from atnas.learner import InnerConfig, score
from atnas.space import Encode, SearchSpace
from atnas.supernet import Supernet


@dataclass(frozen=True)
class SearchConfig:
    """Budget and settings of a per-task search."""

    population: int = 8
    generations: int = 3
    seed_top: int = 4  # encodes taken as they are from the meta-population
    budget_seconds: float | None = None  # checked between generations
    inner: InnerConfig = InnerConfig(steps=5, lr=0.1)  # noqa: RUF009 (frozen value)
    final_inner: InnerConfig | None = InnerConfig(steps=10, lr=0.1)  # noqa: RUF009
    folds: int = 1
    views: int = 2
    crossover_prob: float = 0.5
    # Weight, in held-out images, of the meta-population's fitness as a prior (0: support only).
    prior_strength: float = 60.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.population < 1 or self.generations < 0 or self.seed_top < 1:
            raise ConfigError("population and seed_top must be >= 1, generations >= 0")
        if self.budget_seconds is not None and self.budget_seconds <= 0:
            raise ConfigError("budget_seconds must be positive")

    def to_json(self) -> dict[str, Any]:
        """JSON form, recorded in metrics.json."""
        return dataclasses.asdict(self)


@dataclass
class Generation:
    """Fitness summary of one generation."""

    generation: int
    best: float
    mean: float
    best_encode: str
    evaluations: int
    elapsed: float


@dataclass
class SearchResult:
    """The chosen encode, its adapted weights and how the search went."""

    encode: Encode
    weights: dict[str, Tensor]
    fitness: Fitness
    history: list[Generation]
    evaluations: int
    search_seconds: float
    adapt_seconds: float
    support_acc: float
    scored: dict[Encode, Fitness] = field(default_factory=dict)

    def metrics(self) -> dict[str, Any]:
        """The result as JSON (without weights)."""
        return {
            "encode": self.encode.to_json(),
            "fitness": dataclasses.asdict(self.fitness) | {"value": self.fitness.value},
            "generations": [dataclasses.asdict(g) for g in self.history],
            "evaluations": self.evaluations,
            "search_seconds": self.search_seconds,
            "adapt_seconds": self.adapt_seconds,
            "support_acc": self.support_acc,
        }


def seed_population(
    space: SearchSpace,
    ranked: Sequence[Encode],
    cfg: SearchConfig,
    rng: np.random.Generator,
    constraint: Constraint | None = None,
) -> list[Encode]:
    """The fittest ``seed_top`` meta-population encodes, topped up with their mutations."""
    pop: list[Encode] = []
    for e in ranked:
        if len(pop) == min(cfg.seed_top, cfg.population):
            break
        if e not in pop and space.is_valid(e) and (constraint is None or constraint(e)):
            pop.append(e)
    if not pop:
        raise ConfigError("no encode of the meta-population satisfies the constraint")
    for _ in range(cfg.population * 20):
        if len(pop) >= cfg.population:
            break
        child = mutate(space, pop[int(rng.integers(len(pop)))], rng, constraint=constraint)
        if child not in pop:
            pop.append(child)
    return pop


def search(
    supernet: Supernet,
    ranked: Sequence[Encode],
    support_x: Tensor,
    support_y: Tensor,
    n_way: int,
    cfg: SearchConfig = SearchConfig(),
    make_evaluator: EvaluatorFactory | None = None,
    constraint: Constraint | None = None,
    on_generation: Callable[[Generation], None] | None = None,
    prior: Mapping[Encode, float] | None = None,
) -> SearchResult:
    """Evolves an architecture for the task given by its support set, then adapts it.

    A candidate's value is its support hold-out accuracy shrunk towards a prior: the
    meta-population's across-task fitness of that encode (for an encode new to the
    meta-population, the population's lowest fitness), weighted as ``cfg.prior_strength``
    held-out images. With a few support images the hold-out accuracy alone is too noisy to
    rank candidates, and an encode the supernet never trained tends to win by luck.

    Args:
        supernet: the meta-supernet (its weights are not modified).
        ranked: meta-population encodes, fittest first.
        support_x, support_y: the task's labelled images (B, C, H, W) and labels 0..n_way-1.
        n_way: number of classes.
        cfg: population, generations, wall-clock budget, inner loop, seed.
        make_evaluator: builds the scorer of encodes from the support splits (default: scores
            in this process); it only ever receives the support set.
        constraint: an optional predicate on encodes (e.g. a parameter budget).
        on_generation: called after each generation; may raise to stop.
        prior: the meta-population's fitness of its encodes (None: support fitness only).
    """
    space = supernet.space
    started = time.perf_counter()
    rng = np.random.default_rng(cfg.seed)
    splits = support_splits(support_x, support_y, n_way, cfg.folds, cfg.views, cfg.seed)
    evaluator: Evaluator
    if make_evaluator is None:
        evaluator = LocalEvaluator(supernet, splits, n_way, cfg.inner)
    else:
        evaluator = make_evaluator(splits, n_way, cfg.inner)
    scored: dict[Encode, Fitness] = {}
    n_obs = sum(len(sp.hy) for sp in splits)
    known = {e: f for e, f in (prior or {}).items() if f is not None}
    k = cfg.prior_strength if known else 0.0
    floor = min(known.values()) if known else 0.0

    def value(e: Encode) -> float:
        f = scored[e]
        shrunk = (n_obs * f.acc + k * known.get(e, floor)) / (n_obs + k)
        return shrunk - LOSS_WEIGHT * f.loss

    def evaluate(encodes: list[Encode]) -> None:
        fresh = [e for e in encodes if e not in scored]
        for e, f in zip(fresh, evaluator(fresh), strict=True):
            scored[e] = f

    pop = seed_population(space, ranked, cfg, rng, constraint)
    history: list[Generation] = []
    for gen in range(cfg.generations + 1):
        if gen > 0:
            if (
                cfg.budget_seconds is not None
                and time.perf_counter() - started >= cfg.budget_seconds
            ):
                break
            children = breed(
                space,
                pop,
                [value(e) for e in pop],
                cfg.population,
                rng,
                cfg.crossover_prob,
                constraint,
                exclude=set(scored),
            )
            evaluate(children)
            pop = [e for e, _ in survivors([(e, value(e)) for e in pop + children], cfg.population)]
        else:
            evaluate(pop)
            pop = [e for e, _ in survivors([(e, value(e)) for e in pop], cfg.population)]
        values = [value(e) for e in pop]
        g = Generation(
            gen,
            max(values),
            float(np.mean(values)),
            pop[0].key(),
            len(scored),
            time.perf_counter() - started,
        )
        history.append(g)
        if on_generation is not None:
            on_generation(g)
    best = pop[0]
    search_seconds = time.perf_counter() - started
    t0 = time.perf_counter()
    weights = adapt_encode(
        supernet, best, support_x, support_y, n_way, cfg.final_inner or cfg.inner
    )
    adapt_seconds = time.perf_counter() - t0
    support_acc, _ = score(best, weights, support_x, support_y)
    return SearchResult(
        best,
        weights,
        scored[best],
        history,
        len(scored),
        search_seconds,
        adapt_seconds,
        support_acc,
        scored,
    )


@torch.no_grad()
def query_accuracy(result: SearchResult, query_x: Tensor, query_y: Tensor) -> float:
    """Accuracy of the searched and adapted subnet on labelled query images (reporting only)."""
    return score(result.encode, result.weights, query_x, query_y)[0]
