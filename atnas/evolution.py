"""Evolutionary operators over architecture encodes: pure functions with an explicit Generator.

Constraints are predicates; an operator retries a bounded number of times to produce a valid
child and raises :class:`EncodeError` when it cannot. Same Generator state, same result.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from atnas.errors import EncodeError
from atnas.space import Encode, LayerChoice, SearchSpace

Constraint = Callable[[Encode], bool]
MAX_TRIES = 200
MAX_FAILED_DRAWS = 20  # breeding stops early when the space (or constraint) is nearly exhausted


def _accept(space: SearchSpace, constraint: Constraint | None) -> Constraint:
    return lambda e: space.is_valid(e) and (constraint is None or constraint(e))


def _retry(draw: Callable[[], Encode], ok: Constraint, what: str) -> Encode:
    for _ in range(MAX_TRIES):
        enc = draw()
        if ok(enc):
            return enc
    raise EncodeError(f"{what}: no valid encode after {MAX_TRIES} tries (constraint too tight?)")


def _random_layer(space: SearchSpace, rng: np.random.Generator) -> LayerChoice:
    return LayerChoice(
        space.ops[int(rng.integers(len(space.ops)))],
        space.widths[int(rng.integers(len(space.widths)))],
    )


def random_encode(
    space: SearchSpace, rng: np.random.Generator, constraint: Constraint | None = None
) -> Encode:
    """A uniformly drawn valid encode (rejection sampling under ``constraint``)."""
    return _retry(
        lambda: Encode(tuple(_random_layer(space, rng) for _ in range(space.num_layers))),
        _accept(space, constraint),
        "random_encode",
    )


def mutate(
    space: SearchSpace,
    parent: Encode,
    rng: np.random.Generator,
    rate: float | None = None,
    constraint: Constraint | None = None,
) -> Encode:
    """A child that differs from ``parent`` in at least one layer.

    Each layer is redrawn with probability ``rate`` (default 1/num_layers); one layer is always
    redrawn. A redraw changes the op, the width or both, each with equal chance.
    """
    p = 1.0 / space.num_layers if rate is None else rate

    def draw() -> Encode:
        layers = list(parent.layers)
        forced = int(rng.integers(len(layers)))
        for i, c in enumerate(layers):
            if i == forced or rng.random() < p:
                fresh = _random_layer(space, rng)
                kind = int(rng.integers(3))  # 0: op, 1: width, 2: both
                layers[i] = LayerChoice(
                    fresh.op if kind != 1 else c.op, fresh.width if kind != 0 else c.width
                )
        return Encode(tuple(layers))

    ok = _accept(space, constraint)
    return _retry(draw, lambda e: e != parent and ok(e), "mutate")


def crossover(
    space: SearchSpace,
    a: Encode,
    b: Encode,
    rng: np.random.Generator,
    constraint: Constraint | None = None,
) -> Encode:
    """Uniform crossover: each layer from ``a`` or ``b`` with equal chance."""

    def draw() -> Encode:
        pick = rng.random(len(a.layers)) < 0.5
        return Encode(
            tuple(x if take else y for x, y, take in zip(a.layers, b.layers, pick, strict=True))
        )

    return _retry(draw, _accept(space, constraint), "crossover")


def tournament(fitness: Sequence[float], rng: np.random.Generator, size: int = 2) -> int:
    """Index of the fittest of ``size`` members drawn at random (ties: the first drawn)."""
    picks = rng.choice(len(fitness), size=min(size, len(fitness)), replace=False)
    return int(max(picks, key=lambda i: fitness[i]))


def breed(
    space: SearchSpace,
    parents: Sequence[Encode],
    fitness: Sequence[float],
    n: int,
    rng: np.random.Generator,
    crossover_prob: float = 0.5,
    constraint: Constraint | None = None,
    exclude: set[Encode] | None = None,
) -> list[Encode]:
    """``n`` new distinct children of ``parents`` by tournament selection, crossover, mutation.

    Children already in ``exclude`` (or in ``parents``) are redrawn (bounded); if the space is
    nearly exhausted fewer than ``n`` children come back.
    """
    bred = breed_with_parents(space, parents, fitness, n, rng, crossover_prob, constraint, exclude)
    return [child for child, _ in bred]


def breed_with_parents(
    space: SearchSpace,
    parents: Sequence[Encode],
    fitness: Sequence[float],
    n: int,
    rng: np.random.Generator,
    crossover_prob: float = 0.5,
    constraint: Constraint | None = None,
    exclude: set[Encode] | None = None,
) -> list[tuple[Encode, tuple[Encode, ...]]]:
    """Like :func:`breed`, with the parent (or two) of each child: a child's prior comes from
    its parents."""
    seen = set(parents) | (exclude or set())
    children: list[tuple[Encode, tuple[Encode, ...]]] = []
    failures = 0
    for _ in range(n * 20):
        if len(children) == n or failures > MAX_FAILED_DRAWS:
            break
        a = parents[tournament(fitness, rng)]
        try:
            if len(parents) > 1 and rng.random() < crossover_prob:
                b = parents[tournament(fitness, rng)]
                child = crossover(space, a, b, rng, constraint)
                if child in seen:
                    child = mutate(space, child, rng, constraint=constraint)
                origin: tuple[Encode, ...] = (a, b)
            else:
                child = mutate(space, a, rng, constraint=constraint)
                origin = (a,)
        except EncodeError:
            failures += 1  # a tight constraint: this parent has no valid child nearby
            continue
        if child not in seen:
            seen.add(child)
            children.append((child, origin))
        else:
            failures += 1
    return children


def survivors(scored: Sequence[tuple[Encode, float]], k: int) -> list[tuple[Encode, float]]:
    """The ``k`` fittest distinct encodes, best first (stable on ties)."""
    best: dict[Encode, float] = {}
    for enc, fit in scored:
        if enc not in best or fit > best[enc]:
            best[enc] = fit
    ranked = sorted(best.items(), key=lambda item: -item[1])
    return ranked[:k]
