"""Search for a novel task: evolve the architecture from the meta-population, then adapt.

The population is seeded with the fittest encodes of the meta-population plus mutations of
them. Each generation breeds ``screen`` × population children and ranks them by a zero-step
proxy (nearest-prototype loss on inherited features: one forward pass each); the best
``population`` of them get the full fitness (a few gradient steps on support splits, see
:mod:`atnas.fitness`), and the fittest distinct encodes survive. Fitness values are cached:
the inherited weights do not change during a search. After the last generation (or when the
wall-clock budget is spent) the best encode is adapted on the whole support set.

Stopping. Candidates are scored in batches of about ``CHECK_EVERY_S`` seconds each (sized from
the evaluator's measured speed), and the budget and the caller's ``check`` are looked at
between batches, so a large generation stops within about a second of a cancel or of the
budget: what was scored by then is kept.

Ranking. A support set of 5-25 images scores a candidate with an error of several points, so
the observed held-out loss is shrunk towards a prior: the meta-population's across-task
fitness of the encode (a child inherits its parents' mean). How far it is shrunk is estimated
from the search's own scores (empirical Bayes): the spread of the observations around the
prior beyond their standard errors is the signal; the standard errors are the noise.
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

from atnas.cost import arch_cost
from atnas.errors import ConfigError, ConstraintError, EncodeError
from atnas.evolution import Constraint, breed_with_parents, mutate, random_encode, survivors
from atnas.fitness import (
    Evaluator,
    EvaluatorFactory,
    Fitness,
    LocalEvaluator,
    adapt_encode,
    support_splits,
)
from atnas.learner import InnerConfig, score
from atnas.space import Encode, LayerChoice, SearchSpace
from atnas.supernet import Supernet

CHECK_EVERY_S = 0.5  # scoring is cut into batches of about this long; see the module docstring
FIRST_BATCH = 4  # candidates in the first batch of an evaluator, before its speed is known


@dataclass(frozen=True)
class SearchConfig:
    """Budget and settings of a per-task search."""

    population: int = 8
    generations: int = 3
    seed_top: int = 4  # encodes taken as they are from the meta-population
    budget_seconds: float | None = None  # checked between scoring batches (see CHECK_EVERY_S)
    inner: InnerConfig = InnerConfig(steps=5, lr=0.1)  # noqa: RUF009 (frozen value)
    # 30 steps, not 10: on shifted domains (inverted, thick strokes, 8x8 digits) 10 steps left
    # the zero head under-trained, 3-12 points below 30; level on Omniglot (docs/benchmarks.md,
    # "Issue 6, round 6")
    final_inner: InnerConfig | None = InnerConfig(steps=30, lr=0.1)  # noqa: RUF009
    folds: int = 1  # hold-out folds when shots >= 2 (each holds out one image per class)
    views: int = 2  # augmented views scored when shots == 1
    crossover_prob: float = 0.5
    screen: int = 2  # children per generation = screen x population, ranked by the proxy
    shrink: bool = True  # shrink observed fitness towards the meta-population prior
    # with >= 2 shots, ship the pixel centroid when it beats the adapted subnet on held-out
    # support images (atnas.floors.check_pixel_floor)
    pixel_fallback: bool = True
    # the weight of nearest centroid on pixels as a second expert multiplied into the adapted
    # subnet at every shot count (atnas.floors.fused_log_probs); 0 (the default) ships the
    # subnet alone. Opt-in: at 2 it gained 11.5 points on 1-shot 8x8 digits and lost 8.7 on
    # Omniglot with thinned strokes (docs/benchmarks.md, "Issue 6, round 22")
    pixel_expert: float = 0.0
    # with >= 2 shots and pixel_fallback, the check also scores the subnet times the pixels at
    # this weight and ships the best of three (0: subnet or pixels; "Issue 6, round 23")
    check_fused: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.population < 1 or self.generations < 0 or self.seed_top < 1:
            raise ConfigError("population and seed_top must be >= 1, generations >= 0")
        if self.screen < 1 or self.folds < 1 or self.views < 1:
            raise ConfigError("screen, folds and views must be >= 1")
        if self.budget_seconds is not None and self.budget_seconds <= 0:
            raise ConfigError("budget_seconds must be positive")
        for name in ("pixel_expert", "check_fused"):
            if not 0 <= getattr(self, name) < float("inf"):
                raise ConfigError(f"{name} must be a finite number >= 0")

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


@dataclass(frozen=True)
class FrontPoint:
    """A candidate on the accuracy-cost front: nothing cheaper ranked as high."""

    encode: Encode
    macs: int
    params: int
    acc: float
    value: float

    def to_json(self) -> dict[str, Any]:
        """JSON form (front.json rows)."""
        return {
            "encode": self.encode.to_json(),
            "key": self.encode.key(),
            "macs": self.macs,
            "params": self.params,
            "acc": self.acc,
            "value": self.value,
        }


@dataclass
class SearchResult:
    """The chosen encode, its adapted weights and how the search went."""

    encode: Encode
    weights: dict[str, Tensor]
    fitness: Fitness
    value: float  # what the search ranked the chosen encode by (as progress shows it)
    history: list[Generation]
    evaluations: int
    search_seconds: float
    adapt_seconds: float
    support_acc: float
    scored: dict[Encode, Fitness] = field(default_factory=dict)
    values: dict[Encode, float] = field(default_factory=dict)
    front: list[FrontPoint] = field(default_factory=list)
    screened: int = 0

    def metrics(self) -> dict[str, Any]:
        """The result as JSON (without weights)."""
        return {
            "encode": self.encode.to_json(),
            "fitness": dataclasses.asdict(self.fitness) | {"value": self.value},
            "generations": [dataclasses.asdict(g) for g in self.history],
            "evaluations": self.evaluations,
            "screened": self.screened,
            "search_seconds": self.search_seconds,
            "adapt_seconds": self.adapt_seconds,
            "support_acc": self.support_acc,
            "front": [p.to_json() for p in self.front],
        }


def seed_population(
    space: SearchSpace,
    ranked: Sequence[Encode],
    cfg: SearchConfig,
    rng: np.random.Generator,
    constraint: Constraint | None = None,
) -> list[Encode]:
    """The fittest ``seed_top`` meta-population encodes, topped up with their mutations.

    When no member meets ``constraint``, the search starts from the narrowest uniform encodes
    that do (one op in every layer at the smallest width), else from a random one
    (:class:`ConstraintError` when none can be found).
    """
    pop: list[Encode] = []
    for e in ranked:
        if len(pop) == min(cfg.seed_top, cfg.population):
            break
        if e not in pop and space.is_valid(e) and (constraint is None or constraint(e)):
            pop.append(e)
    if not pop:
        pop = [e for e in narrowest_uniform(space) if constraint is None or constraint(e)]
    if not pop:
        try:
            pop.append(random_encode(space, rng, constraint))
        except EncodeError:
            raise ConstraintError(
                "no encode of the meta-population, nor any of 200 random ones, meets the "
                "constraints"
            ) from None
    for _ in range(cfg.population * 20):
        if len(pop) >= cfg.population:
            break
        try:
            child = mutate(space, pop[int(rng.integers(len(pop)))], rng, constraint=constraint)
        except EncodeError:
            break  # the constraint leaves few encodes: search what there is
        if child not in pop:
            pop.append(child)
    return pop


def narrowest_uniform(space: SearchSpace) -> list[Encode]:
    """One encode per op (identity excepted): that op in every layer at the smallest width."""
    w = space.widths[0]
    return [
        Encode(tuple(LayerChoice(op, w) for _ in range(space.num_layers)))
        for op in space.ops
        if op != "identity"
    ]


def shrunk_values(
    scored: Mapping[Encode, Fitness], prior: Mapping[Encode, float | None]
) -> dict[Encode, float]:
    """Posterior means of each candidate's held-out score (``-loss``), by empirical Bayes.

    Model: observed score ``o_i ~ N(t_i, se_i^2)``, true score ``t_i ~ N(m_i, tau^2)`` with
    ``m_i = mean(o) + beta * (f_i - mean(f))`` from the prior fitness ``f_i`` (``beta`` the
    least-squares slope, at least 0; ``m_i = mean(o)`` without a prior). ``tau^2`` is the
    spread of ``o - m`` beyond the mean squared standard error. Returns
    ``m_i + tau^2 / (tau^2 + se_i^2) * (o_i - m_i)``.
    """
    encs = list(scored)
    o = np.array([-scored[e].loss for e in encs])
    se2 = np.array([scored[e].loss_se2 for e in encs])
    if len(encs) < 3:
        return {e: float(v) for e, v in zip(encs, o, strict=True)}
    f_raw = [prior.get(e) for e in encs]
    has = np.array([f is not None for f in f_raw])
    f = np.array([0.0 if v is None else v for v in f_raw])
    m = np.full(len(encs), o.mean())
    if has.sum() >= 3 and f[has].var() > 0:
        beta = max(0.0, float(np.cov(o[has], f[has])[0, 1] / f[has].var(ddof=1)))
        m[has] = o[has].mean() + beta * (f[has] - f[has].mean())
        m[~has] = o[~has].mean() if (~has).any() else m[~has]
    tau2 = max(float(np.var(o - m)) - float(se2.mean()), 1e-8)
    w = tau2 / (tau2 + se2)
    return {e: float(v) for e, v in zip(encs, m + w * (o - m), strict=True)}


def pareto_front(
    space: SearchSpace,
    scored: Mapping[Encode, Fitness],
    values: Mapping[Encode, float],
    image_size: int,
    n_way: int,
) -> list[FrontPoint]:
    """The best-ranked candidate at each cost level: cheapest first, each ranked above all
    cheaper ones."""
    points = []
    for e in scored:
        c = arch_cost(space, e, image_size, n_way)
        points.append(FrontPoint(e, c.flops, c.params, scored[e].acc, values[e]))
    points.sort(key=lambda p: (p.macs, -p.value))
    front: list[FrontPoint] = []
    for p in points:
        if not front or p.value > front[-1].value:
            front.append(p)
    return front


class _Paced:
    """Scores candidates through ``evaluator`` in batches of about ``CHECK_EVERY_S`` seconds,
    calling ``check`` before each batch and stopping early once ``enough`` says so."""

    def __init__(self, evaluator: Evaluator, check: Callable[[], None] | None) -> None:
        self.evaluator, self.check = evaluator, check
        self.size = FIRST_BATCH

    def __call__(self, encodes: Sequence[Encode], enough: Callable[[int], bool]) -> list[Fitness]:
        """Fitness of a prefix of ``encodes``: all of them unless ``enough(scored so far)``
        came true."""
        out: list[Fitness] = []
        while len(out) < len(encodes):
            if self.check is not None:
                self.check()
            if enough(len(out)):
                break
            batch = encodes[len(out) : len(out) + self.size]
            t0 = time.perf_counter()
            out += self.evaluator(batch)
            per_candidate = max((time.perf_counter() - t0) / len(batch), 1e-6)
            # Grow at most 4x per batch: a parallel evaluator looks slow on a small batch.
            self.size = max(1, min(4 * self.size, int(CHECK_EVERY_S / per_candidate)))
        return out


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
    check: Callable[[], None] | None = None,
) -> SearchResult:
    """Evolves an architecture for the task given by its support set, then adapts it.

    Args:
        supernet: the meta-supernet (its weights are not modified).
        ranked: meta-population encodes, fittest first.
        support_x, support_y: the task's labelled images (B, C, H, W) and labels 0..n_way-1.
        n_way: number of classes.
        cfg: population, generations, screening, wall-clock budget, inner loop, seed.
        make_evaluator: builds the scorer of encodes from the support splits (default: scores
            in this process); it only ever receives the support set.
        constraint: an optional predicate on encodes (e.g. :func:`atnas.limits.within`).
        on_generation: called after each generation; may raise to stop.
        prior: the meta-population's fitness of its encodes (None: support fitness only).
        check: called between scoring batches (about every ``CHECK_EVERY_S`` seconds); may
            raise to stop, e.g. :class:`atnas.errors.Cancelled` when the user cancels.
    """
    space = supernet.space
    started = time.perf_counter()
    rng = np.random.default_rng(cfg.seed)
    splits = support_splits(support_x, support_y, n_way, cfg.folds, cfg.views, cfg.seed)
    proxy_inner = dataclasses.replace(cfg.inner, steps=0)
    factory: EvaluatorFactory = make_evaluator or (
        lambda sp, n, inner: LocalEvaluator(supernet, sp, n, inner)
    )
    evaluator = _Paced(factory(splits, n_way, cfg.inner), check)
    proxy = _Paced(factory(splits, n_way, proxy_inner), check)
    scored: dict[Encode, Fitness] = {}
    priors: dict[Encode, float | None] = dict(prior or {})
    screened = 0

    def values() -> dict[Encode, float]:
        if cfg.shrink:
            return shrunk_values(scored, priors)
        return {e: -f.loss for e, f in scored.items()}

    def out_of_time() -> bool:
        return (
            cfg.budget_seconds is not None and time.perf_counter() - started >= cfg.budget_seconds
        )

    def spent(done: int) -> bool:  # the budget stops scoring once there is something to return
        return (done > 0 or bool(scored)) and out_of_time()

    def evaluate(encodes: list[Encode]) -> list[Encode]:
        """Scores the new ones (until the budget is spent); returns those scored."""
        fresh = [e for e in encodes if e not in scored]
        for e, f in zip(fresh, evaluator(fresh, spent), strict=False):
            scored[e] = f
        return [e for e in encodes if e in scored]

    pop = seed_population(space, ranked, cfg, rng, constraint)
    history: list[Generation] = []
    for gen in range(cfg.generations + 1):
        if gen > 0:
            if out_of_time():
                break
            vals = values()
            bred = breed_with_parents(
                space,
                pop,
                [vals[e] for e in pop],
                cfg.population * cfg.screen,
                rng,
                cfg.crossover_prob,
                constraint,
                exclude=set(scored),
            )
            for child, parents in bred:
                known = [priors[p] for p in parents if priors.get(p) is not None]
                priors[child] = float(np.mean(known)) if known else None  # type: ignore[arg-type]
            children = [c for c, _ in bred]
            if len(children) > cfg.population:
                proxy_fit = proxy(children, lambda _: out_of_time())
                screened += len(proxy_fit)
                order = np.argsort([f.loss for f in proxy_fit], kind="stable")
                children = [children[int(i)] for i in order[: cfg.population]]
            if out_of_time():
                break
            children = evaluate(children)
            vals = values()
            pop = [e for e, _ in survivors([(e, vals[e]) for e in pop + children], cfg.population)]
        else:
            pop = evaluate(pop)
            vals = values()
            pop = [e for e, _ in survivors([(e, vals[e]) for e in pop], cfg.population)]
        g = Generation(
            gen,
            vals[pop[0]],
            float(np.mean([vals[e] for e in pop])),
            pop[0].key(),
            len(scored),
            time.perf_counter() - started,
        )
        history.append(g)
        if on_generation is not None:
            on_generation(g)
    vals = values()
    best = max(pop, key=lambda e: vals[e])
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
        vals[best],
        history,
        len(scored),
        search_seconds,
        adapt_seconds,
        support_acc,
        scored,
        vals,
        pareto_front(space, scored, vals, int(support_x.shape[-1]), n_way),
        screened,
    )


@torch.no_grad()
def query_accuracy(result: SearchResult, query_x: Tensor, query_y: Tensor) -> float:
    """Accuracy of the searched and adapted subnet on labelled query images (reporting only)."""
    return score(result.encode, result.weights, query_x, query_y)[0]
