"""How the replicas of one data-parallel meta-training agree: sums, stop flags, shares of work.

Meta-training on N workers keeps one replica of the supernet per worker. Every worker makes the
same random choices, takes its share of the meta-batch (and of the EA's evaluations), and the
results are summed across workers, so every replica takes the same step. A
:class:`Collective` is all the training loop needs for that: the worker's rank, the number of
workers, and an in-place sum. :class:`Single` is one worker (every call a no-op);
:class:`TorchCollective` wraps a ``torch.distributed`` process group that the caller (Ray
Train, or a test) has already initialised, with gloo on CPUs or NCCL on GPUs.

On top of it: :func:`shard` splits work by cost the same way on every worker,
:class:`GradSum` sums the parameters' gradients (in one call, and in any grouping alike), and
:func:`same_everywhere` checks that the workers start from the same state.

>>> one = Single()
>>> t = torch.tensor([1.0, 2.0])
>>> one.all_reduce_sum_(t); t
tensor([1., 2.])
>>> one.any(False), shard([5.0, 1.0, 1.0, 3.0], world=2)
(False, [0, 1, 1, 1])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import torch
import torch.distributed as dist

from atnas.errors import ConfigError


@runtime_checkable
class Collective(Protocol):
    """The workers of one data-parallel run, seen from one of them."""

    @property
    def rank(self) -> int:
        """This worker's index, 0 .. world - 1 (rank 0 writes checkpoints)."""
        ...

    @property
    def world(self) -> int:
        """The number of workers."""
        ...

    @property
    def device(self) -> torch.device:
        """Where the tensors of small collective calls must live (CUDA under NCCL)."""
        ...

    def all_reduce_sum_(self, flat: torch.Tensor) -> None:
        """Replaces ``flat`` on every worker by its sum over all workers (a collective call:
        every worker must make it, in the same order, with a tensor of the same shape)."""
        ...

    def any(self, flag: bool) -> bool:
        """True on every worker when ``flag`` is True on at least one (a collective call)."""
        ...


class Single:
    """A run on one worker: rank 0 of 1; sums and agreements are no-ops."""

    @property
    def rank(self) -> int:
        """Always 0."""
        return 0

    @property
    def world(self) -> int:
        """Always 1."""
        return 1

    @property
    def device(self) -> torch.device:
        """The CPU."""
        return torch.device("cpu")

    def all_reduce_sum_(self, flat: torch.Tensor) -> None:
        """Leaves ``flat`` as it is (the sum over one worker)."""

    def any(self, flag: bool) -> bool:
        """``flag`` itself."""
        return flag


class TorchCollective:
    """The workers of an initialised ``torch.distributed`` process group (gloo or NCCL).

    It never initialises or destroys the group: whoever started the workers owns it (Ray
    Train's ``TorchTrainer`` does, before the training function runs). ``device`` is where
    the small tensors of :meth:`any` live; by default a CUDA device under NCCL, else the CPU.
    Tensors given to :meth:`all_reduce_sum_` must be on a device the backend serves.

    >>> dist.init_process_group("gloo", init_method="tcp://127.0.0.1:29500",
    ...                         rank=rank, world_size=2)                 # doctest: +SKIP
    >>> trainer = MetaTrainer(space, config, train, fitness,
    ...                       collective=TorchCollective())              # doctest: +SKIP
    """

    def __init__(
        self, group: dist.ProcessGroup | None = None, device: torch.device | None = None
    ) -> None:
        if not (dist.is_available() and dist.is_initialized()):
            raise ConfigError(
                "torch.distributed is not initialised: start the process group first "
                "(Ray Train does; otherwise torch.distributed.init_process_group)"
            )
        self.group = group
        self._rank = dist.get_rank(group)
        self._world = dist.get_world_size(group)
        if device is None:
            nccl = dist.get_backend(group) == "nccl"
            device = torch.device("cuda", torch.cuda.current_device()) if nccl else None
        self._device = device or torch.device("cpu")

    @property
    def rank(self) -> int:
        """This process's rank in the group."""
        return self._rank

    @property
    def device(self) -> torch.device:
        """The device of the small tensors of :meth:`any`."""
        return self._device

    @property
    def world(self) -> int:
        """The size of the group."""
        return self._world

    def all_reduce_sum_(self, flat: torch.Tensor) -> None:
        """Sums ``flat`` over the group, in place."""
        dist.all_reduce(flat, op=dist.ReduceOp.SUM, group=self.group)

    def any(self, flag: bool) -> bool:
        """Whether any process of the group raised ``flag``."""
        t = torch.tensor([1.0 if flag else 0.0], device=self.device)
        self.all_reduce_sum_(t)
        return bool(t.item() > 0)


def shard(costs: Sequence[float], world: int) -> list[int]:
    """The rank that does each item of work, balancing the summed cost per rank.

    Longest first, each to the least loaded rank (ties: the lower rank and the earlier item),
    so every worker computes the same shares from the same costs.

    >>> shard([1.0, 1.0, 1.0], world=2)
    [0, 1, 0]
    """
    if world < 1:
        raise ConfigError(f"world must be at least 1, got {world}")
    load = [0.0] * world
    owner = [0] * len(costs)
    for i in sorted(range(len(costs)), key=lambda i: (-costs[i], i)):
        r = min(range(world), key=lambda r: (load[r], r))
        owner[i] = r
        load[r] += costs[i]
    return owner


class GradSum:
    """The meta-batch's gradient: each task's, summed in float64, then summed over the workers.

    Float32 sums depend on their order, and N workers sum the tasks in another order than
    one. Adam turns such last-bit differences of near-zero gradients into steps of the full
    learning rate: on Omniglot, runs on 1 and 2 workers that summed in float32 were 5e-3
    apart after 10 iterations and ranked their populations differently. A float64 sum of
    float32 values is exact unless their magnitudes span more than 2^29, so any grouping
    rounds to the same float32 gradient, and N workers take the steps of one.

    A parameter that no task touched keeps ``.grad = None``: Adam leaves it alone, whereas a
    zero gradient would still move it by its momentum. Only touched parameters are summed
    and sent: a first, small all-reduce agrees on which ones (one flag per parameter, plus
    the extras), a second sums their gradients alone. A net trained in a large supernet
    touches a small share of it (whole tensors of the shared ops it uses; for the default's
    net about a ninth of the supernet, measured in docs/scaling.md).

    >>> p = torch.nn.Parameter(torch.zeros(2))
    >>> total = GradSum([p], extras=1)
    >>> for g in ([1.0, 2.0], [0.5, 0.25]):
    ...     p.grad = torch.tensor(g)
    ...     total.add_grads_()
    >>> total.all_reduce_(Single(), [7.0]), p.grad
    ([7.0], tensor([1.5000, 2.2500]))
    """

    def __init__(self, params: Sequence[torch.Tensor], extras: int = 0) -> None:
        self.params = list(params)
        self.sizes = [p.numel() for p in self.params]
        self.n = sum(self.sizes)
        self.extras = extras
        self.device = self.params[0].device if self.params else torch.device("cpu")
        self.sums: dict[int, torch.Tensor] = {}  # parameter index -> float64 sum of its grads
        self.sent_elements = 0  # how many gradient elements the last all-reduce sent

    @property
    def max_elements(self) -> int:
        """Elements of the largest message: every parameter touched, flags and extras."""
        return self.n + len(self.params) + self.extras

    def add_grads_(self) -> None:
        """Adds every parameter's ``.grad`` (one task's gradient) and clears it."""
        for k, p in enumerate(self.params):
            if p.grad is None:
                continue
            grad = p.grad.detach().reshape(-1)
            if k in self.sums:
                self.sums[k] += grad
            else:
                self.sums[k] = grad.to(torch.float64, copy=True)
            p.grad = None

    def all_reduce_(self, collective: Collective, extras: Sequence[float] = ()) -> list[float]:
        """Sums over the workers (collective calls) and sets each ``.grad`` to the total.

        ``extras`` (as many as the constructor said) ride along, e.g. the tasks' summed loss;
        their totals are returned.
        """
        if len(extras) != self.extras:
            raise ValueError(f"expected {self.extras} extra values, got {len(extras)}")
        head = torch.zeros(len(self.params) + self.extras, dtype=torch.float64)
        for k in self.sums:
            head[k] = 1.0
        head[len(self.params) :] = torch.tensor(list(extras), dtype=torch.float64)
        if collective.world > 1:
            head = head.to(collective.device)
            collective.all_reduce_sum_(head)
        values = head.tolist()
        touched = [k for k in range(len(self.params)) if values[k] > 0]
        if collective.world > 1 and touched:
            packed = torch.cat(
                [
                    self.sums[k]
                    if k in self.sums
                    else torch.zeros(self.sizes[k], dtype=torch.float64, device=self.device)
                    for k in touched
                ]
            )
            collective.all_reduce_sum_(packed)
            offset = 0
            for k in touched:
                self.sums[k] = packed[offset : offset + self.sizes[k]]
                offset += self.sizes[k]
        self.sent_elements = sum(self.sizes[k] for k in touched) if collective.world > 1 else 0
        for k, p in enumerate(self.params):
            p.grad = self.sums[k].view_as(p).to(p.dtype) if k in touched else None
        self.sums = {}
        return [float(x) for x in values[len(self.params) :]]


def same_everywhere(collective: Collective, values: Sequence[float]) -> bool:
    """Whether every worker holds the same ``values`` (to float64 rounding); collective.

    Every worker gets the same answer, so all of them can stop on it together.
    """
    if collective.world == 1:
        return True
    x = torch.tensor(list(values), dtype=torch.float64, device=collective.device)
    mean = x.clone()
    collective.all_reduce_sum_(mean)
    mean /= collective.world
    spread = (x - mean).square()
    collective.all_reduce_sum_(spread)
    tol = 1e-9 * (1.0 + mean.abs())
    return bool((spread.sqrt() <= tol).all().item())
