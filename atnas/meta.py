"""The meta (outer) optimiser: meta-gradients of the shared supernet weights from one task.

Three algorithms share one interface (:func:`accumulate_meta_grad`):

- ``fomaml`` (default): first-order MAML. Adapt detached copies on the support set; the query
  loss gradient at the adapted weights is added to the supernet slices the subnet uses.
- ``maml``: second-order MAML; back-propagates through the inner loop.
- ``reptile``: adapt on the whole task; the meta-gradient is (initial - adapted) weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import torch
import torch.nn.functional as F

from atnas.learner import InnerConfig, Rates, adapt, detached
from atnas.space import Encode
from atnas.supernet import Supernet, init_head, logits
from atnas.tasks import Task


class MetaAlgorithm(str, Enum):
    """How the supernet's meta-gradient is formed."""

    FOMAML = "fomaml"  # first-order MAML (default; cheapest)
    MAML = "maml"  # second-order MAML (back-propagates through the inner loop)
    REPTILE = "reptile"  # Reptile: move towards the adapted weights


@dataclass(frozen=True)
class QueryOutcome:
    """Query loss and accuracy after adaptation, for one task of a meta-batch."""

    loss: float
    acc: float


def accumulate_meta_grad(
    supernet: Supernet,
    encode: Encode,
    task: Task,
    inner: InnerConfig,
    algorithm: MetaAlgorithm,
    scale: float,
) -> QueryOutcome:
    """Adds ``scale`` × this task's meta-gradient to the ``.grad`` of the supernet parameters."""
    views = supernet.weights(encode)
    head = {
        k: inner.head_scale * v
        for k, v in init_head(
            encode, views, task.support_x, task.support_y, task.way, inner.head
        ).items()
    }
    learn = inner.learn_rates and algorithm is not MetaAlgorithm.REPTILE
    rates: Rates | None = supernet.rates() if learn else supernet.fixed_rates()
    if algorithm is MetaAlgorithm.MAML:
        start = {**views, **{k: v.requires_grad_(True) for k, v in head.items()}}
        fast = adapt(
            encode, start, task.support_x, task.support_y, inner, create_graph=True, rates=rates
        )
        out = logits(task.query_x, encode, fast)
        loss = F.cross_entropy(out, task.query_y)
        (loss * scale).backward()  # type: ignore[no-untyped-call]
    elif algorithm is MetaAlgorithm.FOMAML:
        start = detached({**views, **head})
        fast = adapt(encode, start, task.support_x, task.support_y, inner, rates=rates)
        out = logits(task.query_x, encode, fast)
        loss = F.cross_entropy(out, task.query_y)
        names = list(views)
        wrt = [fast[k] for k in names] + ([supernet.log_rates] if learn else [])
        grads = torch.autograd.grad(loss, wrt, allow_unused=True)
        torch.autograd.backward([views[k] for k in names], [g * scale for g in grads[: len(names)]])
        if learn and grads[-1] is not None:
            # First order: each step's gradient is a constant, so the query loss reaches a
            # rate through that step's update alone (-<dL/dfast, g_t>, summed over steps).
            _add_grad(supernet.log_rates, grads[-1] * scale)
    else:
        start = detached({**views, **head})
        x = torch.cat([task.support_x, task.query_x])
        y = torch.cat([task.support_y, task.query_y])
        fast = adapt(encode, start, x, y, inner, rates=rates)
        with torch.no_grad():
            out = logits(task.query_x, encode, fast)
            loss = F.cross_entropy(out, task.query_y)
        names = list(views)
        torch.autograd.backward(
            [views[k] for k in names],
            [(start[k].detach() - fast[k].detach()) * scale for k in names],
        )
    acc = (out.argmax(1) == task.query_y).float().mean().item()
    return QueryOutcome(loss.item(), acc)


def _add_grad(param: torch.nn.Parameter, grad: torch.Tensor) -> None:
    param.grad = grad.detach() if param.grad is None else param.grad + grad.detach()
