"""Evaluator actors: score a population's candidates in parallel across the Ray cluster.

Each actor caches the supernets (by id) and task splits (by key) it was sent, so a search
ships its support set once per actor and the supernet once per actor's lifetime.

An actor whose process dies (killed, out of memory) is restarted by Ray, and the calls it had
in hand are retried on the new process (which refills its caches from the object store): a
search goes on. A call that kills its actor ``TASK_RETRIES + 1`` times fails the search with
a reason instead of killing actors forever.
"""

from __future__ import annotations

import os
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import ray
import torch
from ray.exceptions import RayActorError

from atnas.errors import AtnasError
from atnas.fitness import Evaluator, Fitness, Split, split_fitness
from atnas.learner import InnerConfig
from atnas.space import Encode
from atnas.supernet import Supernet
from workers.holder import Blob, supernet_from_blob
from workers.runtime import evaluator_gpus

CACHE = 4  # supernets and tasks kept per actor
TASK_RETRIES = 2  # re-runs of a call whose actor died (the actor itself is always restarted)


@ray.remote(num_cpus=0)
class EvaluatorActor:
    """Holds supernets and task splits; scores encodes with :func:`atnas.fitness.split_fitness`."""

    def __init__(self, threads: int = 1) -> None:
        torch.set_num_threads(threads)
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self._nets: OrderedDict[str, Supernet] = OrderedDict()
        self._tasks: OrderedDict[str, list[Split]] = OrderedDict()

    def score(
        self,
        supernet_id: str,
        blob_ref: list[ray.ObjectRef[Any]],
        task_key: str,
        splits_ref: list[ray.ObjectRef[Any]],
        n_way: int,
        inner: dict[str, Any],
        encodes: list[Any],
    ) -> list[tuple[float, float]]:
        """(accuracy, loss) of each encode (JSON form) on the task's support splits."""
        net = self._nets.get(supernet_id)
        if net is None:
            blob: Blob = ray.get(blob_ref[0])
            net = self._nets[supernet_id] = supernet_from_blob(blob, self.device)
            if len(self._nets) > CACHE:
                self._nets.popitem(last=False)
        splits = self._tasks.get(task_key)
        if splits is None:
            raw: list[Split] = ray.get(splits_ref[0])
            splits = [
                Split(
                    s.x.to(self.device),
                    s.y.to(self.device),
                    s.hx.to(self.device),
                    s.hy.to(self.device),
                )
                for s in raw
            ]
            self._tasks[task_key] = splits
            if len(self._tasks) > CACHE:
                self._tasks.popitem(last=False)
        cfg = InnerConfig(**inner)
        out = []
        for e in encodes:
            f = split_fitness(net, Encode.from_json(e), splits, n_way, cfg)
            out.append((f.acc, f.loss))
        return out

    def ping(self) -> str:
        """Liveness and device."""
        return str(self.device)

    def pid(self) -> int:
        """The actor's process id (for operators, and the tests that kill it)."""
        return os.getpid()


class EvaluatorPool:
    """A fixed set of evaluator actors spread over the cluster (one per CPU core, or GPU)."""

    def __init__(self, size: int, gpus: int = 0) -> None:
        if size < 1:
            raise ValueError("an evaluator pool needs at least one actor")
        options: dict[str, Any] = {
            "scheduling_strategy": "SPREAD",
            "max_restarts": -1,  # the actor holds caches only: a fresh one is as good
            "max_task_retries": TASK_RETRIES,
        }
        if gpus:
            options["num_gpus"] = evaluator_gpus(size)
        self.actors = [EvaluatorActor.options(**options).remote() for _ in range(size)]  # type: ignore[attr-defined]
        ray.get([a.ping.remote() for a in self.actors])

    def evaluator(
        self,
        supernet_id: str,
        blob_ref: ray.ObjectRef[Any],
        splits: Sequence[Split],
        n_way: int,
        inner: InnerConfig,
        actors: int | None = None,
    ) -> Evaluator:
        """An :data:`atnas.fitness.Evaluator` that spreads each batch over the pool."""
        use = self.actors[: actors or len(self.actors)]
        splits_ref = ray.put([Split(s.x.cpu(), s.y.cpu(), s.hx.cpu(), s.hy.cpu()) for s in splits])
        task_key = uuid.uuid4().hex
        inner_json = asdict(inner)

        def evaluate(encodes: Sequence[Encode]) -> list[Fitness]:
            chunks: list[list[int]] = [[] for _ in use]
            for i in range(len(encodes)):
                chunks[i % len(use)].append(i)
            calls = [
                (
                    idx,
                    actor.score.remote(
                        supernet_id,
                        [blob_ref],
                        task_key,
                        [splits_ref],
                        n_way,
                        inner_json,
                        [encodes[i].to_json() for i in idx],
                    ),
                )
                for actor, idx in zip(use, chunks, strict=True)
                if idx
            ]
            result: list[Fitness | None] = [None] * len(encodes)
            for idx, ref in calls:
                try:
                    scores = ray.get(ref)
                except RayActorError as exc:
                    raise AtnasError(
                        f"an evaluator process died while scoring {len(idx)} candidates (e.g. "
                        f"{encodes[idx[0]].key()}), again on each of {TASK_RETRIES} retries; "
                        "see the worker log"
                    ) from exc
                for i, (acc, loss) in zip(idx, scores, strict=True):
                    result[i] = Fitness(acc, loss)
            return [f for f in result if f is not None]

        return evaluate

    def shutdown(self) -> None:
        """Stops the actors."""
        for a in self.actors:
            ray.kill(a)
