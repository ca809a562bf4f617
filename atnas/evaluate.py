"""Evaluation of methods on many sampled tasks: accuracy with a 95% CI, and time per task.

Methods share one code path (the same supernet forward, inner loop and tasks):

- ``atnas``: per-task evolutionary search from the meta-population, then adaptation;
- ``meta_best``: the meta-population's best encode, adapted without per-task search;
- ``random``: a random encode of the space, adapted with inherited weights;
- ``fixed``: the state's fixed encode (the Conv-4 baseline's meta-training) adapted;
- ``scratch``: the same search, but every candidate trained from random initialisation.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from enum import Enum
from typing import Any

import numpy as np
import torch

from atnas.errors import ConfigError
from atnas.evolution import random_encode
from atnas.fitness import adapt_encode
from atnas.learner import InnerConfig, score
from atnas.metatrain import MetaState
from atnas.search import SearchConfig, search
from atnas.supernet import Supernet
from atnas.tasks import Task, TaskSampler


class Method(str, Enum):
    """What is evaluated on each task (see the module docstring)."""

    ATNAS = "atnas"
    META_BEST = "meta_best"
    RANDOM = "random"
    FIXED = "fixed"
    SCRATCH = "scratch"


@dataclass(frozen=True)
class Summary:
    """Mean accuracy with a 95% confidence interval, and per-task wall time."""

    method: str
    tasks: int
    mean_acc: float
    ci95: float
    median_seconds: float
    p95_seconds: float
    mean_evaluations: float
    top_encodes: list[tuple[str, int]]

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)


def mean_ci(values: Sequence[float]) -> tuple[float, float]:
    """Mean and half-width of its 95% CI (normal approximation); NaN where undefined.

    >>> mean_ci([1.0, 3.0])
    (2.0, 1.96)
    """
    a = np.asarray(values, dtype=float)
    if len(a) < 2:
        return (float(a.mean()) if len(a) else float("nan")), float("nan")
    return float(a.mean()), 1.96 * float(a.std(ddof=1)) / math.sqrt(len(a))


def summarise(
    method: str, accs: list[float], secs: list[float], evals: list[int], encodes: list[str]
) -> Summary:
    """Mean, 95% CI (normal approximation), median and p95 time of per-task results."""
    a = np.asarray(accs)
    _, ci = mean_ci(accs)
    counts: dict[str, int] = {}
    for e in encodes:
        counts[e] = counts.get(e, 0) + 1
    top = sorted(counts.items(), key=lambda kv: -kv[1])[:3]
    return Summary(
        method,
        len(a),
        float(a.mean()),
        ci,
        float(np.median(secs)),
        float(np.percentile(secs, 95)),
        float(np.mean(evals)),
        top,
    )


def evaluate(
    state: MetaState,
    sampler: TaskSampler,
    n_tasks: int,
    method: Method,
    search_cfg: SearchConfig,
    seed: int = 0,
    scratch_inner: InnerConfig = InnerConfig(steps=50, lr=0.1),  # noqa: B008 (frozen value)
    device: torch.device | None = None,
    on_task: Callable[[int, float], None] | None = None,
) -> Summary:
    """Runs ``method`` on ``n_tasks`` tasks drawn with ``seed`` (the same tasks for every method).

    Timing covers what a user waits for: search (if any) and adaptation, not task sampling or
    query scoring.
    """
    device = device or torch.device("cpu")
    task_rng = np.random.default_rng(seed)
    enc_rng = np.random.default_rng(seed + 1)
    net = state.supernet.to(device)
    if method is Method.FIXED and state.config.fixed_encode is None:
        raise ConfigError("method 'fixed' needs a state meta-trained with a fixed encode")
    scratch_net = (
        Supernet(state.space, seed=seed + 2).to(device) if method is Method.SCRATCH else None
    )
    ranked = [m.encode for m in state.ranked()]
    accs: list[float] = []
    secs: list[float] = []
    evals: list[int] = []
    encodes: list[str] = []
    for i in range(n_tasks):
        task: Task = sampler.sample(task_rng).to(device)
        cfg = replace(search_cfg, seed=seed + i)
        t0 = time.perf_counter()
        if method in (Method.ATNAS, Method.SCRATCH):
            if method is Method.SCRATCH:
                assert scratch_net is not None
                cfg = replace(cfg, inner=scratch_inner, final_inner=scratch_inner)
            result = search(
                scratch_net or net,
                ranked,
                task.support_x,
                task.support_y,
                task.way,
                cfg,
                prior=None if method is Method.SCRATCH else state.prior(),
            )
            encode, weights, n_eval = result.encode, result.weights, result.evaluations
        else:
            encode = random_encode(state.space, enc_rng) if method is Method.RANDOM else ranked[0]
            weights = adapt_encode(
                net,
                encode,
                task.support_x,
                task.support_y,
                task.way,
                cfg.final_inner or cfg.inner,
            )
            n_eval = 0
        secs.append(time.perf_counter() - t0)
        acc, _ = score(encode, weights, task.query_x, task.query_y)
        accs.append(acc)
        evals.append(n_eval)
        encodes.append(encode.key())
        if on_task is not None:
            on_task(i, acc)
    return summarise(method.value, accs, secs, evals, encodes)
