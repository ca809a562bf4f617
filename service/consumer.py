"""The worker side of the queue: take the next runnable job, take over a dead worker's, ack.

It folds the queue and the job store together so that every worker handles the corner cases
the same way:

- a job cancelled while queued is skipped; a job whose record is gone is dropped;
- a job delivered twice (its id enqueued again) runs once: a second delivery of a job that a
  live worker runs is dropped;
- a job left ``running`` by a worker whose heartbeat expired is re-queued and started again,
  unless a cancel was asked meanwhile (it becomes ``cancelled``) or its workers died
  ``max_attempts`` times already (it becomes ``failed``, naming the cap: a job that kills
  its worker must not be re-run forever).
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


def attempts_reason(job: JobRecord, max_attempts: int) -> str:
    """The error of a job given up after its workers died ``job.attempts`` times."""
    return (
        f"the job's worker died {job.attempts} times (attempts cap "
        f"ATNAS_MAX_ATTEMPTS={max_attempts}); last worker {job.worker}"
    )


class JobConsumer:
    """Claims jobs for one worker.

    Example:
        >>> consumer = JobConsumer(store, "node1-dispatcher", max_attempts=3)  # doctest: +SKIP
        >>> while (a := consumer.next(block_ms=1000)) is not None:  # doctest: +SKIP
        ...     run(a.job)   # update_progress / succeed / fail / mark_cancelled on the store
        ...     consumer.done(a)
    """

    def __init__(self, jobs: JobStore, worker_id: str, max_attempts: int | None = None) -> None:
        self.jobs = jobs
        self.worker_id = worker_id
        self.max_attempts = max_attempts

    def next(self, block_ms: int = 1000) -> Assignment | None:
        """Claims the next job and marks it running; None when none came within ``block_ms``
        or the one that came must not run (cancelled meanwhile, finished, or already running
        on a live worker: it is acked and skipped)."""
        claim = self.jobs.queue.claim(self.worker_id, block_ms)
        return None if claim is None else self._take(claim, fresh=True)

    def reclaim(self, min_idle_ms: int) -> list[Assignment]:
        """Takes over jobs whose claim has been idle ``min_idle_ms`` and whose worker is dead.

        A job whose worker still heartbeats is left to it (its worker touches its claim back).
        """
        out = []
        for claim in self.jobs.queue.reclaim_stale(self.worker_id, min_idle_ms):
            assignment = self._take(claim, fresh=False)
            if assignment is not None:
                out.append(assignment)
        return out

    def touch(self, assignment: Assignment) -> None:
        """Keeps a long job's claim fresh so that no other worker reclaims it."""
        self.jobs.queue.touch(assignment.claim, self.worker_id)

    def done(self, assignment: Assignment) -> None:
        """Acks the claim once the job reached succeeded, failed or cancelled."""
        self.jobs.queue.ack(assignment.claim)

    def _take(self, claim: Claim, fresh: bool) -> Assignment | None:
        """Starts the claim's job here, or settles the claim; ``fresh``: a first delivery."""
        try:
            job = self.jobs.get(claim.job_id)
        except JobNotFound:
            self.jobs.queue.ack(claim)
            return None
        if job.status is JobStatus.running:
            if job.worker == self.worker_id or job.worker in self.jobs.workers_alive():
                # Running on a live worker, whose own claim is another message (a fresh one)
                # or this one (reclaimed after a missed touch: its worker claims it back).
                if fresh:
                    self.jobs.queue.ack(claim)
                return None
            taken = self._take_over(claim, job)
            if taken is None:
                return None
            job = taken
        if job.status is not JobStatus.queued:  # cancelled while queued, or already finished
            self.jobs.queue.ack(claim)
            return None
        try:
            job = self.jobs.start(job.id, self.worker_id)
        except IllegalTransition:  # cancelled, or started by another worker, since the read
            self.jobs.queue.ack(claim)
            return None
        return Assignment(claim, job)

    def _take_over(self, claim: Claim, job: JobRecord) -> JobRecord | None:
        """A dead worker's running job: re-queued; or cancelled, or failed at the attempts cap
        (then the claim is acked and None comes back)."""
        try:
            if self.jobs.cancel_requested(job.id):
                self.jobs.mark_cancelled(job.id)
            elif self.max_attempts is not None and job.attempts >= self.max_attempts:
                self.jobs.fail(job.id, attempts_reason(job, self.max_attempts))
            else:
                return self.jobs.requeue(job.id)
        except IllegalTransition:  # another worker took it over first; its claim decides
            return None
        self.jobs.queue.ack(claim)
        return None
