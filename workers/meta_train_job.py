"""Runs a ``meta_train`` job on N Ray Train workers: data-parallel, checkpointed, restartable.

Ray Train's ``TorchTrainer`` starts N workers (one CPU each, or one GPU each on a cluster with
GPUs) and their ``torch.distributed`` process group (gloo, or NCCL on GPUs). Each runs
:func:`atnas.pipeline.meta_trainer` with a :class:`atnas.collective.TorchCollective`: every
worker holds a replica of the supernet, trains its share of every meta-batch and of the EA's
evaluations, and the gradients are summed, so all take the same steps (``atnas.collective``).
``workers`` in the spec sets N; ``"auto"`` is what one node can place (its GPUs, else its CPUs).

Rank 0 writes the run's checkpoint file and, every two seconds, the job's progress (straight
into the job store). At every checkpoint iteration all workers report to Ray Train (a barrier:
every worker must report as often), rank 0 with the checkpoint. If a worker's process dies, Ray
Train restarts the group from the last checkpoint (``FailureConfig``); if the whole dispatcher
dies, the re-queued job resumes from the checkpoint left in its work folder. A typed error
(bad data, a bad setting) would fail the same way again: the workers end with an ``error`` in
their last report, which fails the job at once, with one line.

A cancel is seen by a watcher thread in the dispatcher, which leaves a ``stop`` file in the
work folder; the workers look for it before every iteration and stop together (after a final
checkpoint), so a cancel takes effect within about a second.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ray.train
import redis
from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchConfig, TorchTrainer

from atnas import pipeline
from atnas.collective import TorchCollective
from atnas.errors import AtnasError, Cancelled
from atnas.limits import body_floor
from atnas.metatrain import MetaState
from atnas.metatrain import Progress as MetaProgress
from service.errors import ServiceError
from service.jobs import JobRecord, JobStore
from service.keys import Keys
from service.redis_conn import url_of
from service.schemas import MetaTrainSpec
from workers.context import WorkerContext
from workers.progress import JobProgress
from workers.reasons import reason
from workers.runtime import TRAIN_GPU_SHARE, cluster_gpus, cluster_info
from workers.specs import decode_limits, image_config, meta_train_overrides

log = logging.getLogger(__name__)
CHECKPOINT = "supernet.pt"
TRIAL_PIDS = "trial.pids"  # in the work folder: the pid of rank 0 at each (re)start
STOP = "stop"  # in the work folder: asks the workers to stop (the job was cancelled)
ERROR = "error.txt"  # in the work folder: why the workers gave up (a typed error)
PROGRESS_EVERY_S = 2.0
WATCH_EVERY_S = 0.2  # how often the dispatcher looks for a cancel


def train_worker(config: dict[str, Any]) -> None:
    """The training function of every Ray Train worker.

    A typed error or a cancel ends it normally, with ``error`` (one line) or ``cancelled`` in
    its last report, so that Ray Train does not restart it; anything else (a bug, a lost
    process) is left to Ray Train's restarts.
    """
    rank = ray.train.get_context().get_world_rank()
    work = Path(config["work_dir"])
    try:
        work.mkdir(parents=True, exist_ok=True)
        if rank == 0:
            with open(work / TRIAL_PIDS, "a") as pids:  # one line per (re)start
                pids.write(f"{os.getpid()}\n")
        _train(config, work, rank)
    except Cancelled:
        if rank == 0:  # training has stopped: say so now, not after the workers' teardown
            with contextlib.suppress(ServiceError, redis.RedisError):
                _progress_writer(config).jobs.mark_cancelled(config["job_id"])
        ray.train.report({"final": True, "cancelled": True})
    except AtnasError as exc:
        # Ray Train keeps only the metrics that came with a checkpoint: the reason goes
        # through the work folder (every worker meets the same error; rank 0 writes it).
        if rank == 0:
            (work / ERROR).write_text(reason(exc))
        ray.train.report({"final": True, "error": reason(exc)})


def _resume_source(work: Path) -> Path | None:
    """The checkpoint to resume: Ray Train's (after a restart), else the work folder's (a job
    re-queued after its dispatcher died), else None."""
    restored = ray.train.get_checkpoint()
    if restored is not None:
        with restored.as_directory() as d:
            kept = work / f".restored-{os.getpid()}.pt"
            shutil.copy2(Path(d) / CHECKPOINT, kept)
            return kept
    local = work / CHECKPOINT
    return local if local.exists() else None


def _progress_writer(config: dict[str, Any]) -> JobProgress:
    r = redis.Redis.from_url(config["redis_url"], decode_responses=True)
    return JobProgress(JobStore(r, Keys(config["key_prefix"])), config["job_id"])


def _train(config: dict[str, Any], work: Path, rank: int) -> None:
    spec = MetaTrainSpec.model_validate(config["spec"])
    stop = work / STOP
    if stop.exists():
        raise Cancelled("the job was cancelled")
    # Rank 0 writes the run's checkpoint; the others resume from a copy of their own.
    path = work / (CHECKPOINT if rank == 0 else f".rank{rank}.pt")
    source = _resume_source(work)
    if source is not None and source != path:
        shutil.copy2(source, path)
    if source is not None and source.name.startswith(".restored-"):
        source.unlink(missing_ok=True)
    images = pipeline.load_meta_images(
        config["paths"],
        image_config(spec, config.get("decode_limits")),
        spec.include,
        spec.exclude,
    )
    world = ray.train.get_context().get_world_size()
    trainer = pipeline.meta_trainer(
        images,
        spec.preset,
        checkpoint_path=path,
        resume=True,
        device=ray.train.torch.get_device(),
        collective=TorchCollective() if world > 1 else None,
        **meta_train_overrides(spec),
    )
    every = trainer.config.checkpoint_every
    writer = _progress_writer(config) if rank == 0 else None
    last = [0.0]

    def on_progress(p: MetaProgress) -> None:
        if p.iteration % every == 0:  # first: every worker must reach each report
            _report(p, path, rank, final=False)
        if writer is not None and time.monotonic() - last[0] >= PROGRESS_EVERY_S:
            last[0] = time.monotonic()
            _write_progress(writer, p)  # raises Cancelled after a cancel: all stop together

    state = trainer.run(on_progress, path, should_stop=stop.exists)
    if rank != 0:
        path.unlink(missing_ok=True)
    best = state.ranked()[0]
    final = MetaProgress(
        state.iteration,
        state.config.iterations,
        state.elapsed,
        state.config.budget_seconds,
        state.curve[-1]["loss"] if state.curve else 0.0,
        state.curve[-1]["acc"] if state.curve else 0.0,
        best.fitness,
        state.ranked(),
    )
    if writer is not None:
        with contextlib.suppress(Cancelled):
            _write_progress(writer, final)
    _report(final, work / CHECKPOINT, rank, final=True)


def _write_progress(writer: JobProgress, p: MetaProgress) -> None:
    writer.report(
        "meta_train",
        step=p.iteration,
        total=p.total,
        best_fitness=p.best_fitness,
        message=f"loss {p.loss:.3f}, acc {p.acc:.3f}",
        extra={
            "loss": p.loss,
            "acc": p.acc,
            "best_encode": p.population[0].encode.key() if p.population else "",
            "budget_seconds": p.budget_seconds or 0.0,
        },
        force=True,
    )


def _report(p: MetaProgress, checkpoint: Path, rank: int, final: bool) -> None:
    """Every worker's report to Ray Train (a barrier); rank 0's carries the checkpoint."""
    metrics = {
        "iteration": p.iteration,
        "elapsed": p.elapsed,
        "loss": p.loss,
        "final": final,
        "device": ray.train.torch.get_device().type,  # "cuda" where Ray gave the worker a GPU
    }
    if rank != 0 or not checkpoint.exists():
        ray.train.report(metrics)
        return
    with tempfile.TemporaryDirectory() as d:
        shutil.copy2(checkpoint, Path(d) / CHECKPOINT)
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(d))


@contextlib.contextmanager
def _cancel_watch(progress: JobProgress, stop: Path) -> Iterator[threading.Event]:
    """While inside, a thread leaves the ``stop`` file once the job is cancelled; yields an
    event set when it did."""
    cancelled, done = threading.Event(), threading.Event()

    def watch() -> None:
        while not done.wait(WATCH_EVERY_S):
            try:
                progress.check_cancel()
            except Cancelled:
                cancelled.set()
                stop.touch()
                return
            except Exception as exc:  # Redis away for a moment: the stopper still checks
                log.warning("job %s: cancel check failed: %s", progress.job_id, exc)

    stop.unlink(missing_ok=True)
    thread = threading.Thread(target=watch, name=f"cancel-{progress.job_id}", daemon=True)
    thread.start()
    try:
        yield cancelled
    finally:
        done.set()
        thread.join()


def workers_for(spec: MetaTrainSpec) -> int:
    """N for a job: its ``workers``, or for ``"auto"`` what one node can place."""
    if spec.workers != "auto":
        return int(spec.workers)
    info = cluster_info()
    return info.auto_workers if info is not None else 1


def run_meta_train(ctx: WorkerContext, job: JobRecord) -> dict[str, Any]:
    """Runs the job on its Ray Train workers; stores supernet.pt and meta.json as artifacts."""
    spec = job.spec
    assert isinstance(spec, MetaTrainSpec)
    progress = JobProgress(ctx.jobs, job.id)
    n = workers_for(spec)
    progress.report("loading", message=f"reading datasets; {n} worker(s)", force=True)
    # Workers run in their own working directory: hand them absolute paths.
    paths = [str(ctx.datasets.path(d).resolve()) for d in spec.datasets]
    work = ctx.work_dir(job.id).resolve()
    gpus = cluster_gpus() > 0
    trainer = TorchTrainer(
        train_worker,
        train_loop_config={
            "spec": spec.model_dump(mode="json"),
            "paths": paths,
            "work_dir": str(work),
            "decode_limits": decode_limits(ctx.settings),
            "job_id": job.id,
            "key_prefix": ctx.settings.key_prefix,
            "redis_url": url_of(ctx.jobs.client),
        },
        scaling_config=ScalingConfig(
            num_workers=n,
            use_gpu=gpus,
            resources_per_worker={"CPU": 1, "GPU": TRAIN_GPU_SHARE} if gpus else {"CPU": 1},
        ),
        torch_config=TorchConfig(backend="nccl" if gpus else "gloo"),
        run_config=RunConfig(
            name=f"meta_train-{job.id}",
            storage_path=str((ctx.settings.data_dir / "train").resolve()),
            failure_config=FailureConfig(max_failures=2),
            checkpoint_config=CheckpointConfig(num_to_keep=2),
        ),
    )
    (work / ERROR).unlink(missing_ok=True)
    with _cancel_watch(progress, work / STOP) as cancelled:
        try:
            result = trainer.fit()
        except Exception as exc:  # Ray Train gave up: the workers kept failing
            if cancelled.is_set():
                raise Cancelled(f"job {job.id} was cancelled") from None
            raise AtnasError(f"meta-training failed: {reason(exc)}") from None
    if cancelled.is_set():
        raise Cancelled(f"job {job.id} was cancelled")
    if (work / ERROR).exists():
        raise AtnasError((work / ERROR).read_text())
    if result.checkpoint is None:
        raise AtnasError("meta-training ended without a checkpoint")
    progress.report("export", force=True)
    with result.checkpoint.as_directory() as d:
        state, _ = MetaState.load(Path(d) / CHECKPOINT)
        info = ctx.store(job.id, CHECKPOINT, Path(d) / CHECKPOINT)
    report = state.report()
    meta = ctx.store(job.id, "meta.json", json.dumps(report, indent=2).encode())
    best = state.ranked()[0]
    return {
        "iterations": state.iteration,
        "elapsed_seconds": state.elapsed,
        "iterations_per_second": report["iterations_per_second"],
        "best_encode": best.encode.to_json(),
        "best_architecture": best.encode.key(),
        "best_fitness": best.fitness,
        "population": len(state.population),
        "way": spec.way,
        "shot": spec.shot,
        "cost_floor": cost_floor(state),
        "workers": n,
        "device": str((result.metrics or {}).get("device", "cpu")),
        "artifacts": [info.name, meta.name],
    }


def cost_floor(state: MetaState) -> dict[str, dict[str, int]]:
    """The cheapest body per last-layer width (MACs and params; JSON keys), so the API can
    tell an impossible search constraint without torch: see :func:`atnas.limits.body_floor`."""
    floor = body_floor(state.space, state.config.image_size)
    return {
        kind: {str(w): int(c) for w, c in per_width.items()} for kind, per_width in floor.items()
    }
