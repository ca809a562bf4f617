"""Collectives: one worker, work shares, exact gradient sums (None kept), state checks; several
workers are threads of this process."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
import torch

from atnas.collective import (
    Collective,
    GradSum,
    Single,
    TorchCollective,
    same_everywhere,
    shard,
)
from atnas.errors import ConfigError


class _Threads:
    """``world`` workers as threads of this process, summing through shared memory."""

    def __init__(self, world: int) -> None:
        self.world = world
        self.barrier = threading.Barrier(world, timeout=10)
        self.parts: list[torch.Tensor | None] = [None] * world

    def run(self, fn: Callable[[Collective], Any]) -> list[Any]:
        """``fn`` on every worker at once; its results, by rank."""
        results: list[Any] = [None] * self.world
        errors: list[BaseException] = []

        def work(rank: int) -> None:
            try:
                results[rank] = fn(_Member(self, rank))
            except BaseException as exc:
                errors.append(exc)
                self.barrier.abort()

        threads = [threading.Thread(target=work, args=(r,)) for r in range(self.world)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=20)
        if errors:
            raise errors[0]
        return results


class _Member:
    def __init__(self, group: _Threads, rank: int) -> None:
        self.group, self.rank, self.world = group, rank, group.world
        self.device = torch.device("cpu")

    def all_reduce_sum_(self, flat: torch.Tensor) -> None:
        g = self.group
        g.parts[self.rank] = flat.clone()
        g.barrier.wait()
        total = sum(g.parts[1:], start=g.parts[0])  # the same order on every worker
        g.barrier.wait()
        flat.copy_(total)

    def any(self, flag: bool) -> bool:
        t = torch.tensor([float(flag)])
        self.all_reduce_sum_(t)
        return bool(t.item() > 0)


def test_single_is_rank_0_of_1_and_changes_nothing() -> None:
    one = Single()
    assert isinstance(one, Collective)
    assert (one.rank, one.world, one.device) == (0, 1, torch.device("cpu"))
    t = torch.tensor([1.0, 2.0])
    one.all_reduce_sum_(t)
    assert t.tolist() == [1.0, 2.0]
    assert one.any(True) and not one.any(False)
    p = torch.nn.Parameter(torch.zeros(2))
    assert GradSum([p], extras=1).all_reduce_(one, [3.0]) == [3.0] and p.grad is None
    assert same_everywhere(one, [1.0])


def test_shard_balances_costs_the_same_way_everywhere() -> None:
    costs = [10.0, 1.0, 3.0, 3.0, 2.0, 1.0]
    owner = shard(costs, 2)
    assert owner == shard(costs, 2)
    loads = [sum(c for c, o in zip(costs, owner, strict=True) if o == r) for r in range(2)]
    assert loads == [10.0, 10.0]
    assert shard(costs, 1) == [0] * 6
    assert sorted(shard([1.0] * 4, 4)) == [0, 1, 2, 3]
    assert shard([], 3) == []
    with pytest.raises(ConfigError):
        shard(costs, 0)


def test_grad_sum_sums_tasks_and_workers_and_keeps_none_where_nothing_touched() -> None:
    def work(col: Collective) -> tuple[list[torch.Tensor | None], list[float]]:
        a, b, c = (torch.nn.Parameter(torch.zeros(2, 2)) for _ in range(3))
        total = GradSum([a, b, c], extras=2)
        for task in range(2):
            a.grad = torch.full((2, 2), float(col.rank + task))  # both workers, both tasks
            if col.rank == 1 and task == 1:
                b.grad = torch.ones(2, 2)  # one task of one worker; c: none at all
            total.add_grads_()
            assert a.grad is None and b.grad is None  # cleared for the next task
        sums = total.all_reduce_(col, [float(col.rank), 1.0])
        assert total.sent_elements == 8  # a and b (touched on some worker), not c
        assert total.max_elements == 12 + 3 + 2
        return [a.grad, b.grad, c.grad], sums

    for grads, sums in _Threads(2).run(work):
        a, b, c = grads
        assert a is not None and torch.equal(a, torch.full((2, 2), 4.0))  # 0+1 + 1+2
        assert a.dtype == torch.float32
        assert b is not None and torch.equal(b, torch.ones(2, 2))
        assert c is None
        assert sums == [1.0, 2.0]


def test_grad_sum_rounds_alike_however_the_tasks_are_grouped() -> None:
    g = torch.Generator().manual_seed(0)
    grads = [torch.randn(1000, generator=g) * 10.0 ** float(k % 7 - 3) for k in range(8)]

    def summed(groups: list[list[int]]) -> torch.Tensor:
        def work(col: Collective) -> torch.Tensor:
            p = torch.nn.Parameter(torch.zeros(1000))
            total = GradSum([p])
            for k in groups[col.rank]:
                p.grad = grads[k].clone()
                total.add_grads_()
            total.all_reduce_(col)
            assert p.grad is not None
            return p.grad

        return _Threads(len(groups)).run(work)[0]

    one = summed([list(range(8))])
    assert torch.equal(one, summed([[0, 2, 4, 6], [1, 3, 5, 7]]))
    assert torch.equal(one, summed([[7, 0], [3, 1, 6], [2, 5, 4]]))
    # a float32 sum in another order is not the same
    f32 = torch.stack(grads).sum(0)
    f32_split = torch.stack(grads[::2]).sum(0) + torch.stack(grads[1::2]).sum(0)
    assert not torch.equal(f32, f32_split)


def test_same_everywhere_agrees_on_every_worker() -> None:
    assert _Threads(3).run(lambda col: same_everywhere(col, [5.0, 0.1])) == [True] * 3
    differ = _Threads(3).run(lambda col: same_everywhere(col, [5.0, float(col.rank == 2)]))
    assert differ == [False] * 3
    assert _Threads(2).run(lambda col: col.any(col.rank == 1)) == [True, True]


def test_torch_collective_needs_an_initialised_process_group() -> None:
    with pytest.raises(ConfigError, match="not initialised"):
        TorchCollective()
