"""The dispatcher: claims jobs from the Redis queue and runs them on Ray.

It runs in a Ray driver process (``atnas serve``, or ``atnas worker`` beside a cluster): one
thread claims jobs (and takes over those of crashed dispatchers), one thread per running job,
and one thread writes heartbeats that the API's ``/readyz`` reads. Search jobs fan their
candidate evaluations out to the evaluator actors; meta_train jobs run as Ray Tune trials.

Timing of a take-over (``ATNAS_HEARTBEAT_TTL_S``, 9 s by default): a live dispatcher beats and
touches the claims of its running jobs every third of the TTL, so a claim idle for a whole
TTL belongs to a worker whose heartbeat has expired too. Every dispatcher looks for such
claims every ``RECLAIM_EVERY_S``: a dead worker's job starts again within about TTL + 2 s.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import redis

from atnas.errors import AtnasError, Cancelled
from service.artifacts import ArtifactStore
from service.consumer import Assignment, JobConsumer
from service.datasets import DatasetStore
from service.errors import ServiceError
from service.jobs import JobRecord, JobStore
from service.keys import Keys
from service.schemas import JobKind
from service.settings import Settings
from workers.context import WorkerContext
from workers.reasons import reason
from workers.runtime import cluster_info

log = logging.getLogger(__name__)
RECLAIM_EVERY_S = 2.0
# First pause before writing a final status again while Redis is unreachable (doubles to 5 s).
FINISH_RETRY_S = 0.5
Runner = Callable[[WorkerContext, JobRecord], dict[str, Any]]


def default_runners() -> dict[JobKind, Runner]:
    """The job runner of each job kind."""
    from workers.meta_train_job import run_meta_train
    from workers.search_job import run_search

    return {JobKind.meta_train: run_meta_train, JobKind.search: run_search}


class Dispatcher:
    """Claims and runs up to ``max_jobs`` jobs at once; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        r: redis.Redis,
        max_jobs: int = 2,
        worker_id: str | None = None,
        stale_after_s: float | None = None,
        runners: dict[JobKind, Runner] | None = None,
    ) -> None:
        keys = Keys(settings.key_prefix)
        self.jobs = JobStore(r, keys, settings.idempotency_ttl_s)
        self.ctx = WorkerContext(
            settings,
            self.jobs,
            DatasetStore(r, keys, settings.datasets_dir),
            ArtifactStore(settings.artifacts_dir),
        )
        self.settings = settings
        self.max_jobs = max_jobs
        self.worker_id = worker_id or f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
        # A claim idle this long was not touched for a whole heartbeat TTL: its worker is dead.
        stale = settings.heartbeat_ttl_s if stale_after_s is None else stale_after_s
        self.stale_after_ms = int(stale * 1000)
        self.runners = runners or default_runners()
        self._stop = threading.Event()
        self._slots = threading.Semaphore(max_jobs)
        self._running: dict[str, Assignment] = {}
        self.consumer = JobConsumer(self.jobs, self.worker_id, settings.max_attempts)
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Starts the claim and heartbeat threads (returns at once)."""
        self.jobs.heartbeat(self.worker_id, self.settings.heartbeat_ttl_s)
        self._publish_cluster()
        for target, name in ((self._claim_loop, "claim"), (self._heartbeat_loop, "heartbeat")):
            t = threading.Thread(target=target, name=f"atnas-{name}", daemon=True)
            t.start()
            self._threads.append(t)
        log.info("dispatcher %s started (max %d jobs)", self.worker_id, self.max_jobs)

    def stop(self, timeout: float = 10.0) -> None:
        """Stops claiming; running jobs finish in their own threads (daemon)."""
        self._stop.set()
        for t in self._threads:
            t.join(timeout)
        self.jobs.worker_gone(self.worker_id)

    def running(self) -> list[str]:
        """Ids of the jobs running here."""
        with self._lock:
            return list(self._running)

    def _heartbeat_loop(self) -> None:
        interval = self.settings.heartbeat_ttl_s / 3
        while not self._stop.wait(interval):
            try:
                self.jobs.heartbeat(self.worker_id, self.settings.heartbeat_ttl_s)
                self._publish_cluster()
                with self._lock:
                    assignments = list(self._running.values())
                for a in assignments:  # a long job must not look like a crashed one
                    self.consumer.touch(a)
            except redis.RedisError as exc:
                log.warning("heartbeat failed: %s", exc)

    def _publish_cluster(self) -> None:
        """Tells the API what the Ray cluster can place (for its ``workers`` check)."""
        info = cluster_info()
        if info is not None:
            self.jobs.publish_cluster(info, 3 * self.settings.heartbeat_ttl_s)

    def _claim_loop(self) -> None:
        next_reclaim = 0.0
        while not self._stop.is_set():
            if not self._slots.acquire(timeout=0.5):
                continue
            assignment = None
            try:
                if time.monotonic() >= next_reclaim:
                    next_reclaim = time.monotonic() + RECLAIM_EVERY_S
                    taken = self.consumer.reclaim(self.stale_after_ms)
                    for extra in taken[1:]:  # more than one free slot is rare: run them anyway
                        self._spawn(extra)
                    assignment = taken[0] if taken else None
                if assignment is None:
                    assignment = self.consumer.next(block_ms=1000)
            except redis.RedisError as exc:
                log.warning("claiming failed: %s", exc)
                self._stop.wait(1.0)
            if assignment is None:
                self._slots.release()
                continue
            self._spawn(assignment)

    def _spawn(self, assignment: Assignment) -> None:
        with self._lock:
            self._running[assignment.job.id] = assignment
        t = threading.Thread(
            target=self._run, args=(assignment,), name=f"job-{assignment.job.id}", daemon=True
        )
        t.start()

    def _run(self, assignment: Assignment) -> None:
        try:
            self.run_job(assignment.job)
        finally:
            with self._lock:
                self._running.pop(assignment.job.id, None)
            try:
                self.consumer.done(assignment)
            except redis.RedisError as exc:
                log.warning("ack of job %s failed: %s", assignment.job.id, exc)
            self._slots.release()

    def run_job(self, job: JobRecord) -> None:
        """Runs one started job to a final status (succeeded, failed or cancelled).

        A failed job's ``error`` is one line (:func:`workers.reasons.reason`); a bug's
        traceback goes to the log only.
        """
        job_id = job.id
        log.info("job %s (%s) started", job_id, job.kind.value)
        try:
            result = self.runners[job.kind](self.ctx, job)
        except Cancelled:
            self._finish(job_id, lambda: self.jobs.mark_cancelled(job_id))
            log.info("job %s cancelled", job_id)
        except Exception as exc:
            message = reason(exc)
            if isinstance(exc, AtnasError | ServiceError):
                log.info("job %s failed: %s", job_id, message)
            else:  # a bug or a broken disk: keep the trace in the log, give the user one line
                log.error("job %s crashed", job_id, exc_info=True)
            self._finish(job_id, lambda: self.jobs.fail(job_id, message))
        else:
            self._finish(job_id, lambda: self.jobs.succeed(job_id, result))
            log.info("job %s succeeded", job_id)

    def _finish(self, job_id: str, change: Callable[[], object]) -> None:
        """Writes a job's final status, retrying while Redis is unreachable: a final status
        lost would leave the job ``running`` for as long as this dispatcher lives."""
        delay = FINISH_RETRY_S
        while True:
            try:
                change()
                return
            except ServiceError as exc:  # e.g. cancelled meanwhile: the first status stands
                log.info("job %s: final status not changed (%s)", job_id, exc)
                return
            except redis.RedisError as exc:
                if self._stop.is_set():  # shutting down: another worker will take it over
                    log.error("job %s: final status not written (%s)", job_id, exc)
                    return
                log.warning("job %s: final status not written yet, retrying (%s)", job_id, exc)
                self._stop.wait(delay)
                delay = min(2 * delay, 5.0)
