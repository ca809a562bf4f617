"""Evolutionary operators: seeded determinism, validity, constraints, bounded retries."""

from __future__ import annotations

import numpy as np
import pytest

from atnas.errors import EncodeError
from atnas.evolution import (
    MAX_TRIES,
    breed,
    crossover,
    mutate,
    random_encode,
    survivors,
    tournament,
)
from atnas.space import Encode, SearchSpace

SPACE = SearchSpace(num_layers=4, widths=(8, 16, 32))


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _pop(n: int, seed: int = 0) -> list[Encode]:
    rng, out = _rng(seed), []
    while len(out) < n:
        e = random_encode(SPACE, rng)
        if e not in out:
            out.append(e)
    return out


def test_operators_are_deterministic_under_a_seed() -> None:
    a, b = _pop(2)
    for seed in range(5):
        assert random_encode(SPACE, _rng(seed)) == random_encode(SPACE, _rng(seed))
        assert mutate(SPACE, a, _rng(seed)) == mutate(SPACE, a, _rng(seed))
        assert crossover(SPACE, a, b, _rng(seed)) == crossover(SPACE, a, b, _rng(seed))
        assert tournament([0.1, 0.5, 0.3], _rng(seed)) == tournament([0.1, 0.5, 0.3], _rng(seed))
        pop = _pop(6, seed)
        fit = list(np.linspace(0, 1, 6))
        assert breed(SPACE, pop, fit, 5, _rng(seed)) == breed(SPACE, pop, fit, 5, _rng(seed))


def test_different_seeds_explore() -> None:
    assert len({random_encode(SPACE, _rng(s)) for s in range(20)}) > 15
    parent = _pop(1)[0]
    assert len({mutate(SPACE, parent, _rng(s)) for s in range(20)}) > 5


def test_random_encodes_are_valid_and_cover_every_op_and_width() -> None:
    rng = _rng(1)
    encs = [random_encode(SPACE, rng) for _ in range(200)]
    assert all(SPACE.is_valid(e) for e in encs)
    assert {c.op for e in encs for c in e.layers} == set(SPACE.ops)
    assert {c.width for e in encs for c in e.layers} == set(SPACE.widths)


def test_mutate_differs_in_at_least_one_layer_and_is_valid() -> None:
    rng = _rng(2)
    for parent in _pop(30, seed=2):
        for rate in (None, 0.0, 1.0):
            child = mutate(SPACE, parent, rng, rate=rate)
            assert SPACE.is_valid(child)
            changed = sum(x != y for x, y in zip(child.layers, parent.layers, strict=True))
            assert changed >= 1
            if rate == 0.0:
                assert changed == 1  # only the forced layer


def test_crossover_takes_each_layer_from_a_parent() -> None:
    a = Encode.of(("conv3x3", 8), ("conv5x5", 8), ("sepconv3x3", 16), ("conv3x3", 32))
    b = Encode.of(("dilconv3x3", 16), ("maxpool_conv1x1", 32), ("conv5x5", 8), ("sepconv5x5", 8))
    rng = _rng(3)
    children = [crossover(SPACE, a, b, rng) for _ in range(50)]
    for child in children:
        assert SPACE.is_valid(child)
        for i, c in enumerate(child.layers):
            assert c in (a.layers[i], b.layers[i])
    assert {c.layers[0] for c in children} == {a.layers[0], b.layers[0]}  # both parents used


def test_crossover_never_yields_invalid_identity() -> None:
    a = Encode.of(("conv3x3", 8), ("identity", 8), ("identity", 8), ("conv3x3", 32))
    b = Encode.of(("conv3x3", 16), ("conv3x3", 32), ("conv3x3", 32), ("identity", 32))
    rng = _rng(4)
    for _ in range(50):
        assert SPACE.is_valid(crossover(SPACE, a, b, rng))


def _small(e: Encode) -> bool:
    return all(c.width <= 16 for c in e.layers) and e.layers[0].op != "conv5x5"


def test_constraints_are_respected() -> None:
    rng = _rng(5)
    pop = [random_encode(SPACE, rng, _small) for _ in range(30)]
    assert all(_small(e) and SPACE.is_valid(e) for e in pop)
    assert all(_small(mutate(SPACE, p, rng, constraint=_small)) for p in pop)
    assert all(_small(crossover(SPACE, pop[0], p, rng, _small)) for p in pop[1:])
    kids = breed(SPACE, pop[:6], [0.0] * 6, 8, rng, constraint=_small)
    assert kids and all(_small(k) for k in kids)


def test_impossible_constraint_raises_after_bounded_retries() -> None:
    calls = []

    def never(e: Encode) -> bool:
        calls.append(e)
        return False

    parent = _pop(1)[0]
    for op in (
        lambda: random_encode(SPACE, _rng(), never),
        lambda: mutate(SPACE, parent, _rng(), constraint=never),
        lambda: crossover(SPACE, parent, parent, _rng(), never),
    ):
        calls.clear()
        with pytest.raises(EncodeError, match="no valid encode"):
            op()
        assert 0 < len(calls) <= MAX_TRIES


def test_mutate_without_alternative_raises() -> None:
    space = SearchSpace(num_layers=1, ops=("conv3x3",), widths=(8,))
    with pytest.raises(EncodeError):
        mutate(space, Encode.of(("conv3x3", 8)), _rng())


def test_tournament_picks_the_fittest_of_its_draw() -> None:
    fit = [0.1, 0.9, 0.5, 0.3]
    assert tournament(fit, _rng(), size=4) == 1  # everyone drawn: the best wins
    assert tournament(fit, _rng(), size=10) == 1
    assert tournament([0.5], _rng()) == 0
    wins = [tournament(fit, _rng(s), size=2) for s in range(200)]
    assert wins.count(0) == 0  # the worst can never win a pair
    assert wins.count(1) > wins.count(3)


def test_breed_gives_distinct_new_children() -> None:
    pop = _pop(6)
    exclude = set(_pop(10, seed=9))
    kids = breed(SPACE, pop, list(range(6)), 10, _rng(), exclude=exclude)
    assert len(kids) == 10 == len(set(kids))
    assert not set(kids) & set(pop) and not set(kids) & exclude
    assert all(SPACE.is_valid(k) for k in kids)


def test_breed_in_a_nearly_exhausted_space_returns_fewer() -> None:
    space = SearchSpace(num_layers=1, ops=("conv3x3", "conv5x5"), widths=(8,))
    pop = [Encode.of(("conv3x3", 8))]
    kids = breed(space, pop, [1.0], 5, _rng())
    assert kids == [Encode.of(("conv5x5", 8))]


def test_survivors_dedupes_sorts_and_truncates() -> None:
    a, b, c, d = _pop(4)
    scored = [(a, 0.2), (b, 0.9), (a, 0.7), (c, 0.5), (d, 0.5), (b, 0.1)]
    assert survivors(scored, 10) == [(b, 0.9), (a, 0.7), (c, 0.5), (d, 0.5)]
    assert survivors(scored, 2) == [(b, 0.9), (a, 0.7)]
    assert survivors([(d, 0.5), (c, 0.5)], 2) == [(d, 0.5), (c, 0.5)]  # stable on ties
    assert survivors([], 3) == []
