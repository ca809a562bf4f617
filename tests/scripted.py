"""A real dispatcher whose jobs follow a short script instead of training (for UI-side tests).

The job goes through everything a worker does to the service: the dispatcher claims it from the
Redis queue and marks it running, ``workers.progress.JobProgress`` writes its progress, the
artifacts go through the worker context's artifact store (the same JSON shapes as the real
runners write: ``meta.json`` with ``curve`` and ``ea_history``; ``metrics.json``,
``arch.json`` and ``front.json``), and the dispatcher writes the final status. Only the
computation is left out, so the events stream, ``atnas wait`` and the dashboard can be tested
in seconds.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis

from service.jobs import JobRecord
from service.schemas import JobKind
from service.settings import Settings
from tests.api.conftest import LiveServer
from tests.conftest import Zips
from workers.context import WorkerContext
from workers.dispatcher import Dispatcher
from workers.progress import JobProgress


class Script:
    """How a scripted job runs: ``steps`` progress reports ``step_s`` apart, then it succeeds
    (or fails with ``fail``). ``gate`` holds each job before its first step until set."""

    def __init__(
        self,
        steps: int = 4,
        step_s: float = 0.3,
        fail: str | None = None,
        pixels: bool = False,
        warnings: tuple[str, ...] = (),
        expert: float = 0.0,
    ) -> None:
        self.steps, self.step_s, self.fail = steps, step_s, fail
        self.pixels = pixels  # a search ships the pixel centroid, as its result says
        self.warnings = list(warnings)  # a search's result carries these warnings
        self.expert = expert  # > 0: a search ships the net times the pixel centroid
        self.gate = threading.Event()
        self.gate.set()

    def run(self, ctx: WorkerContext, job: JobRecord) -> dict[str, Any]:
        progress = JobProgress(ctx.jobs, job.id, interval=0.0)
        progress.report("loading", force=True)
        self.gate.wait(timeout=30)
        curve, gens = [], []
        for step in range(1, self.steps + 1):
            time.sleep(self.step_s)
            loss, acc = 1.6 / step, 0.2 + 0.6 * step / self.steps
            if job.kind is JobKind.meta_train:
                curve.append(
                    {"iteration": step * 10, "elapsed": step * 1.0, "loss": loss, "acc": acc}
                )
                progress.report(
                    "meta_train",
                    step=step * 10,
                    total=self.steps * 10,
                    best_fitness=acc,
                    message=f"loss {loss:.3f}, acc {acc:.3f}",
                    extra={"loss": loss, "acc": acc},
                    force=True,
                )
            else:
                gens.append({"generation": step, "best": acc, "mean": acc - 0.1})
                progress.report("search", step=step, total=self.steps, best_fitness=acc, force=True)
        if self.fail is not None:
            raise ValueError(self.fail)  # the dispatcher records an internal error
        names = [a.name for a in self._artifacts(ctx, job, curve, gens)]
        result = {
            "best_fitness": curve[-1]["acc"] if curve else gens[-1]["best"],
            "artifacts": names,
        }
        if job.kind is JobKind.search:
            check = {"model_acc": 0.6, "pixel_acc": 0.8, "folds": 3, "held_out": 15}
            result["model"] = "pixel_centroid" if self.pixels else "subnet"
            if self.expert and not self.pixels:
                result["model"], result["pixel_expert"] = "subnet_x_pixels", self.expert
            result["floors"] = {"check": {**check, "use_pixels": True} if self.pixels else None}
            result["warnings"] = self.warnings
        return result

    @staticmethod
    def _artifacts(
        ctx: WorkerContext, job: JobRecord, curve: list[dict[str, float]], gens: list[Any]
    ) -> Iterator[Any]:
        def put(name: str, obj: Any) -> Any:
            return ctx.store(job.id, name, json.dumps(obj).encode())

        if job.kind is JobKind.meta_train:
            ea = [
                {
                    "iteration": c["iteration"],
                    "best": c["acc"],
                    "mean": c["acc"] - 0.05,
                    "best_encode": "conv3x3:32",
                }
                for c in curve
            ]
            yield put(
                "meta.json", {"iterations": len(curve) * 10, "curve": curve, "ea_history": ea}
            )
            return
        layers = [
            {
                "index": 0,
                "op": "conv3x3",
                "in_width": 1,
                "width": 32,
                "input_hw": [28, 28],
                "params": 352,
                "macs": 250_880,
            },
            {
                "index": 1,
                "op": "sep5x5",
                "in_width": 32,
                "width": 64,
                "input_hw": [14, 14],
                "params": 2976,
                "macs": 583_296,
            },
        ]
        yield put("metrics.json", {"generations": gens, "support_acc": gens[-1]["best"]})
        yield put(
            "arch.json",
            {
                "encode": [{"op": "conv3x3", "width": 32}, {"op": "sep5x5", "width": 64}],
                "params": 3458,
                "flops": 834_176,
                "layers": layers,
            },
        )
        front = [
            {
                "key": f"net{i}",
                "macs": 10_000 * 4**i,
                "params": 100 * 3**i,
                "acc": 0.5 + 0.1 * i,
                "value": 0.5 + 0.1 * i,
            }
            for i in range(4)
        ]
        yield put("front.json", {"front": front})


def submit_meta_train(server: LiveServer, tmp_path: Path, zips: type[Zips]) -> str:
    """Submits a meta_train job over a small uploaded dataset through the API; its id."""
    data = zips.classes({f"c{i}": 3 for i in range(4)})
    ds = server.client.upload_dataset(zips.write(tmp_path / "classes.zip", data))
    return server.client.submit("meta_train", {"datasets": [ds.id], "way": 2}).id


@contextmanager
def scripted_dispatcher(
    settings: Settings, r: redis.Redis, script: Script | None = None
) -> Iterator[Script]:
    """A running dispatcher over ``settings`` (its key prefix and data folder) whose jobs of
    both kinds follow ``script``; stopped on exit."""
    script = script or Script()
    d = Dispatcher(
        settings,
        r,
        max_jobs=2,
        runners={JobKind.meta_train: script.run, JobKind.search: script.run},
    )
    d.start()
    try:
        yield script
    finally:
        d.stop()
