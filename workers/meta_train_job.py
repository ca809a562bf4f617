"""Runs a ``meta_train`` job through Ray Tune: its trial checkpoints, reports and restarts.

The trial function meta-trains with :func:`atnas.pipeline.meta_train`, reporting metrics every
few seconds and a Tune checkpoint whenever the run's own checkpoint file changes. If the trial's
process dies, Tune restarts it from the last checkpoint (``FailureConfig``); if the whole worker
dies, the re-queued job resumes from the checkpoint left in its work folder. An error raised in
the trial (bad data, a bad setting, a bug) would fail the same way again: the trial catches it
and ends with an ``error`` in its last result, which fails the job at once, with one line.

A Tune callback writes progress into the job store. A cancel is seen by a watcher thread in the
driver, which leaves a ``stop`` file in the work folder; the trial looks for it after every
iteration and stops (after a final checkpoint), so a cancel takes effect within about a second.
A Tune stopper also ends the trial on its next result.
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

from ray import tune

from atnas import pipeline
from atnas.errors import AtnasError, Cancelled
from atnas.limits import body_floor
from atnas.metatrain import MetaState
from atnas.metatrain import Progress as MetaProgress
from service.jobs import JobRecord
from service.schemas import MetaTrainSpec
from workers.context import WorkerContext
from workers.progress import JobProgress
from workers.reasons import reason
from workers.runtime import cluster_gpus
from workers.specs import decode_limits, image_config, meta_train_overrides

log = logging.getLogger(__name__)
CHECKPOINT = "supernet.pt"
TRIAL_PIDS = "trial.pids"  # in the work folder: the pid of each process that ran the trial
STOP = "stop"  # in the work folder: asks the trial to stop (the job was cancelled)
REPORT_EVERY_S = 2.0
WATCH_EVERY_S = 0.2  # how often the driver looks for a cancel


def train_trial(config: dict[str, Any]) -> None:
    """The Tune trial: meta-train, resuming from Tune's checkpoint when restarted.

    It never raises an exception (Tune would retry it): its last result has ``cancelled``
    after a cancel, ``error`` (one line) after an error.
    """
    try:
        work = Path(config["work_dir"])
        work.mkdir(parents=True, exist_ok=True)
        with open(work / TRIAL_PIDS, "a") as pids:  # one line per (re)start of the trial
            pids.write(f"{os.getpid()}\n")
        _train(config, work)
    except Cancelled:
        tune.report({"final": True, "cancelled": True})
    except Exception as exc:
        log.error("meta-training trial failed", exc_info=True)
        tune.report({"final": True, "error": reason(exc)})


def _train(config: dict[str, Any], work: Path) -> None:
    spec = MetaTrainSpec.model_validate(config["spec"])
    stop = work / STOP
    if stop.exists():
        raise Cancelled("the job was cancelled")
    local = work / CHECKPOINT
    restored = tune.get_checkpoint()
    if restored is not None:
        with restored.as_directory() as d:
            shutil.copy2(Path(d) / CHECKPOINT, local)
    images = pipeline.load_meta_images(
        config["paths"],
        image_config(spec, config.get("decode_limits")),
        spec.include,
        spec.exclude,
    )
    state = {"last": 0.0, "mtime": local.stat().st_mtime if local.exists() else 0.0}

    def report(p: MetaProgress, final: bool = False) -> None:
        if not final and stop.exists():  # a stat() per iteration: cheap
            raise Cancelled("the job was cancelled")
        now = time.monotonic()
        if not final and now - state["last"] < REPORT_EVERY_S:
            return
        state["last"] = now
        metrics = {
            "iteration": p.iteration,
            "elapsed": p.elapsed,
            "loss": p.loss,
            "acc": p.acc,
            "best_fitness": p.best_fitness if p.best_fitness is not None else -1.0,
            "best_encode": p.population[0].encode.key() if p.population else "",
            "budget_seconds": p.budget_seconds or 0.0,
            "total": p.total or 0,
            "final": final,
        }
        mtime = local.stat().st_mtime if local.exists() else 0.0
        if final or mtime != state["mtime"]:
            state["mtime"] = mtime
            with tempfile.TemporaryDirectory() as d:
                shutil.copy2(local, Path(d) / CHECKPOINT)
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(d))
        else:
            tune.report(metrics)

    meta = pipeline.meta_train(
        images,
        spec.preset,
        checkpoint_path=local,
        resume=True,
        on_progress=report,
        **meta_train_overrides(spec),
    )
    best = meta.ranked()[0]
    report(
        MetaProgress(
            meta.iteration,
            meta.config.iterations,
            meta.elapsed,
            meta.config.budget_seconds,
            meta.curve[-1]["loss"] if meta.curve else 0.0,
            meta.curve[-1]["acc"] if meta.curve else 0.0,
            best.fitness,
            meta.ranked(),
        ),
        final=True,
    )


# Tune pickles its callbacks and stopper with the experiment state, so they hold a job id
# and find the (unpicklable) progress writer here, in the driver process.
_PROGRESS: dict[str, JobProgress] = {}


class _ProgressCallback(tune.Callback):
    """Copies each trial result into the job's progress (runs in the driver)."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id

    @property
    def progress(self) -> JobProgress:
        return _PROGRESS[self.job_id]

    def on_trial_result(
        self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **info: Any
    ) -> None:
        if "error" in result or "cancelled" in result:  # the trial's last word, not progress
            return
        with contextlib.suppress(Cancelled):  # the stopper ends the trial
            self.progress.report(
                "meta_train",
                step=int(result.get("iteration", 0)),
                total=int(result.get("total", 0)) or None,
                best_fitness=(
                    None if result.get("best_fitness", -1.0) < 0 else float(result["best_fitness"])
                ),
                message=f"loss {result.get('loss', 0):.3f}, acc {result.get('acc', 0):.3f}",
                extra={
                    k: result[k]
                    for k in ("loss", "acc", "best_encode", "budget_seconds")
                    if k in result
                },
            )


class _CancelStopper(tune.Stopper):
    """Stops the trial once the user cancels the job."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self.cancelled = False

    @property
    def progress(self) -> JobProgress:
        return _PROGRESS[self.job_id]

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        try:
            self.progress.check_cancel()
        except Cancelled:
            self.cancelled = True
        return self.cancelled

    def stop_all(self) -> bool:
        return self.cancelled


# Tune keeps trainables in a process-wide registry that is not thread-safe: two jobs starting
# at once in one dispatcher broke it ("dictionary changed size during iteration"). The trainable
# is registered here, under this lock, and Tune is handed its name (which it never registers).
_REGISTRY_LOCK = threading.Lock()


def _trainable(resources: dict[str, float]) -> str:
    """The registered name of :func:`train_trial` with ``resources`` per trial."""
    name = "atnas_meta_train_" + "_".join(f"{k}{v:g}" for k, v in sorted(resources.items()))
    with _REGISTRY_LOCK:
        tune.register_trainable(name, tune.with_resources(train_trial, resources))
    return name


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


def run_meta_train(ctx: WorkerContext, job: JobRecord, cpus: float = 1.0) -> dict[str, Any]:
    """Runs the job's Tune experiment; stores supernet.pt and meta.json as artifacts."""
    spec = job.spec
    assert isinstance(spec, MetaTrainSpec)
    progress = JobProgress(ctx.jobs, job.id)
    progress.report("loading", message="reading datasets", force=True)
    # Trials run in their own working directory: hand them absolute paths.
    paths = [str(ctx.datasets.path(d).resolve()) for d in spec.datasets]
    work = ctx.work_dir(job.id).resolve()
    stopper = _CancelStopper(job.id)
    _PROGRESS[job.id] = progress
    resources = {"cpu": cpus, "gpu": 1 if cluster_gpus() else 0}
    tuner = tune.Tuner(
        _trainable(resources),
        param_space={
            "spec": spec.model_dump(mode="json"),
            "paths": paths,
            "work_dir": str(work),
            "decode_limits": decode_limits(ctx.settings),
        },
        run_config=tune.RunConfig(
            name=f"meta_train-{job.id}",
            storage_path=str((ctx.settings.data_dir / "tune").resolve()),
            failure_config=tune.FailureConfig(max_failures=2),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
            stop=stopper,
            callbacks=[_ProgressCallback(job.id)],
            verbose=0,
        ),
    )
    try:
        with _cancel_watch(progress, work / STOP) as cancelled:
            grid = tuner.fit()
    finally:
        _PROGRESS.pop(job.id, None)
    result = grid[0]
    last = result.metrics or {}
    if stopper.cancelled or cancelled.is_set() or last.get("cancelled"):
        raise Cancelled(f"job {job.id} was cancelled")
    if last.get("error"):
        raise AtnasError(str(last["error"]))
    if result.error is not None:
        raise AtnasError(_trial_error(result.error))
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
        "artifacts": [info.name, meta.name],
    }


def cost_floor(state: MetaState) -> dict[str, dict[str, int]]:
    """The cheapest body per last-layer width (MACs and params; JSON keys), so the API can
    tell an impossible search constraint without torch: see :func:`atnas.limits.body_floor`."""
    floor = body_floor(state.space, state.config.image_size)
    return {
        kind: {str(w): int(c) for w, c in per_width.items()} for kind, per_width in floor.items()
    }


def _trial_error(error: BaseException) -> str:
    """The user-facing message of a trial's failure (a typed atnas error when there is one)."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, AtnasError):
            return str(cause)
        cause = cause.__cause__
    text = str(error).strip().splitlines()
    return text[-1] if text else type(error).__name__
