"""Runs a ``search`` job: fetch the shared supernet, evolve on Ray evaluators, adapt, export."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import ray

from atnas import pipeline
from atnas.data import load_task
from atnas.fitness import Evaluator, Split
from atnas.learner import InnerConfig
from atnas.metatrain import Member, MetaState, MetaTrainConfig
from atnas.search import Generation
from atnas.space import Encode, SearchSpace
from service.jobs import JobRecord
from service.schemas import SearchSpec
from workers.context import WorkerContext
from workers.holder import Blob, supernet_from_blob
from workers.progress import JobProgress
from workers.specs import cost_limits, decode_limits, search_config

log = logging.getLogger(__name__)
SUPERNET_ARTIFACT = "supernet.pt"
CACHED_STATES = 4
# The driver's supernets, shared by the dispatcher's job threads: the lock guards the cache and
# is held while one is built, so that two searches of a new supernet build it once.
_states: OrderedDict[str, MetaState] = OrderedDict()
_states_lock = threading.Lock()


def _state_from_blob(supernet_id: str, blob_ref: ray.ObjectRef[Any]) -> MetaState:
    """The driver's own MetaState view of a held supernet (cached; built once per id)."""
    with _states_lock:
        state = _states.get(supernet_id)
        if state is None:
            blob: Blob = ray.get(blob_ref)
            net = supernet_from_blob(blob, pipeline.default_device())
            state = _states[supernet_id] = MetaState(
                SearchSpace.from_json(blob["space"]),
                MetaTrainConfig.from_json(blob["config"]),
                net,
                [Member(Encode.from_json(e), f) for e, f in blob["population"]],
            )
            focus = blob.get("focus")
            state.focus = None if focus is None else Encode.from_json(focus)
            if len(_states) > CACHED_STATES:
                _states.popitem(last=False)
        else:
            _states.move_to_end(supernet_id)  # least recently used goes first
        return state


def run_search(ctx: WorkerContext, job: JobRecord) -> dict[str, Any]:
    """Runs the job to completion; returns the result summary (artifacts already stored)."""
    spec = job.spec
    assert isinstance(spec, SearchSpec)
    progress = JobProgress(ctx.jobs, job.id)
    progress.report("loading", message="fetching the supernet and the task", force=True)
    path = ctx.artifacts.path(spec.supernet, SUPERNET_ARTIFACT)
    blob_ref = ray.get(ctx.holder.get.remote(spec.supernet, str(path)))[0]
    state = _state_from_blob(spec.supernet, blob_ref)
    pixels, size = decode_limits(ctx.settings)
    decode = replace(pipeline.task_image_config(state), max_pixels=pixels, max_bytes=size)
    task = load_task(ctx.datasets.path(spec.dataset), decode)
    provenance = _provenance(ctx, job, spec)  # for the model card; read now, while it exists
    cfg = search_config(spec, pipeline.search_defaults(state, cost_limits(spec)))
    pool = ctx.pool

    def make_evaluator(splits: Sequence[Split], n_way: int, inner: InnerConfig) -> Evaluator:
        return pool.evaluator(spec.supernet, blob_ref, splits, n_way, inner)

    def on_generation(g: Generation) -> None:
        progress.report(
            "search",
            step=g.generation,
            total=cfg.generations,
            best_fitness=g.best,
            message=f"best {g.best_encode}",
            extra={"evaluations": g.evaluations},
            force=True,
        )

    progress.report("search", step=0, total=cfg.generations, force=True)
    outcome = pipeline.search_task(
        state,
        task,
        cfg,
        limits=cost_limits(spec),
        make_evaluator=make_evaluator,
        on_generation=on_generation,
        check=progress.check_cancel,  # also inside a generation: a cancel stops within ~1 s
    )
    # The final progress keeps the chosen net's value: the number the result reports.
    progress.report("export", best_fitness=outcome.result.value, force=True)
    out = ctx.work_dir(job.id) / "export"
    files = pipeline.export_outcome(out, state, outcome, provenance)
    infos = [ctx.store(job.id, name, p) for name, p in files.items()]
    summary = _summary(outcome, [i.name for i in infos])
    summary["device"] = next(state.supernet.parameters()).device.type  # where the driver adapted
    return summary


def _provenance(ctx: WorkerContext, job: JobRecord, spec: SearchSpec) -> dict[str, Any]:
    """What the model card says made the model: this job, its supernet, data and spec."""
    return {
        "job": job.id,
        "supernet": spec.supernet,
        "dataset": spec.dataset,
        "dataset_filename": ctx.datasets.get(spec.dataset).filename,
        "spec": spec.model_dump(mode="json", exclude_none=True),
    }


def _summary(outcome: pipeline.TaskOutcome, artifacts: list[str]) -> dict[str, Any]:
    """The job result: the chosen net, its cost, the floors it must beat and the front."""
    r = outcome.result
    cost = outcome.metrics["cost"]
    return {
        "encode": r.encode.to_json(),
        "architecture": r.encode.key(),
        "support_acc": r.support_acc,
        "query_acc": outcome.query_acc,
        # The value the search ranked the chosen encode by (as the per-generation progress).
        "fitness": r.value,
        "evaluations": r.evaluations,
        "search_seconds": r.search_seconds,
        "adapt_seconds": r.adapt_seconds,
        "macs": cost["macs"],
        "params": cost["params"],
        "latency_ms": cost["latency_ms"],
        "floors": outcome.metrics["floors"],
        # "subnet" (the default), "subnet_x_pixels" (the adapted subnet times nearest centroid
        # on pixels, with pixel_expert > 0), or "pixel_centroid" when that beat the model on
        # held-out support images
        "model": outcome.metrics["model"],
        "pixel_expert": outcome.pixel_expert,
        "front": outcome.metrics["front"],
        # What to know before deploying it (e.g. a net whose channels were never meta-trained)
        "warnings": outcome.metrics["warnings"],
        "classes": outcome.classes,
        "artifacts": artifacts,
    }
