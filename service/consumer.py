"""The worker side of the queue: take the next runnable job, take over a dead worker's, ack.

It folds the queue and the job store together so that every worker handles the corner cases
the same way: a job cancelled while queued is skipped, a job whose record is gone is dropped,
and a job left ``running`` by a worker whose heartbeat expired is re-queued and started again.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.errors import IllegalTransition, JobNotFound
from service.jobs import JobRecord, JobStore
from service.queue import Claim
from service.schemas import JobStatus


@dataclass(frozen=True)
class Assignment:
    """A job this worker now runs: its queue claim (to ack when done) and its running record."""

    claim: Claim
    job: JobRecord


class JobConsumer:
    """Claims jobs for one worker.

    Example:
        >>> consumer = JobConsumer(store, "node1-dispatcher")   # doctest: +SKIP
        >>> while (a := consumer.next(block_ms=1000)) is not None:  # doctest: +SKIP
        ...     run(a.job)   # update_progress / succeed / fail / mark_cancelled on the store
        ...     consumer.done(a)
    """

    def __init__(self, jobs: JobStore, worker_id: str) -> None:
        self.jobs = jobs
        self.worker_id = worker_id

    def next(self, block_ms: int = 1000) -> Assignment | None:
        """Claims the next job and marks it running; None when none came within ``block_ms``
        or the one that came must not run (cancelled meanwhile: it is acked and skipped)."""
        claim = self.jobs.queue.claim(self.worker_id, block_ms)
        return None if claim is None else self._take(claim)

    def reclaim(self, min_idle_ms: int) -> list[Assignment]:
        """Takes over jobs whose claim has been idle ``min_idle_ms`` and whose worker is dead.

        A job whose worker still heartbeats is left to it (its claim is merely touched).
        """
        alive = set(self.jobs.workers_alive())
        out = []
        for claim in self.jobs.queue.reclaim_stale(self.worker_id, min_idle_ms):
            assignment = self._take(claim, alive)
            if assignment is not None:
                out.append(assignment)
        return out

    def touch(self, assignment: Assignment) -> None:
        """Keeps a long job's claim fresh so that no other worker reclaims it."""
        self.jobs.queue.touch(assignment.claim, self.worker_id)

    def done(self, assignment: Assignment) -> None:
        """Acks the claim once the job reached succeeded, failed or cancelled."""
        self.jobs.queue.ack(assignment.claim)

    def _take(self, claim: Claim, alive: set[str] | None = None) -> Assignment | None:
        try:
            job = self.jobs.get(claim.job_id)
        except JobNotFound:
            self.jobs.queue.ack(claim)
            return None
        if job.status is JobStatus.running:
            if alive is None or (job.worker in alive and job.worker != self.worker_id):
                return None  # still running elsewhere; its worker will ack it
            job = self.jobs.requeue(job.id)
        if job.status is not JobStatus.queued:  # cancelled while queued, or already finished
            self.jobs.queue.ack(claim)
            return None
        try:
            job = self.jobs.start(job.id, self.worker_id)
        except IllegalTransition:  # cancelled between the read and the start
            self.jobs.queue.ack(claim)
            return None
        return Assignment(claim, job)
