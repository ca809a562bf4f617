"""Progress and cancellation of a running job, written through the service's job store.

Both are best effort: while Redis is unreachable a job keeps running (its progress is not
recorded, and a cancel is seen once Redis is back); only its final status must be written, and
the dispatcher retries that until it is.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import redis

from atnas.errors import Cancelled
from service.errors import Conflict
from service.jobs import JobStore
from service.schemas import Progress

log = logging.getLogger(__name__)


class JobProgress:
    """Throttled progress writes (at most every ``interval`` seconds unless forced)."""

    def __init__(self, jobs: JobStore, job_id: str, interval: float = 0.5) -> None:
        self.jobs, self.job_id, self.interval = jobs, job_id, interval
        self.started = time.monotonic()
        self._last = 0.0
        self._redis_down = False

    @property
    def elapsed(self) -> float:
        """Seconds since the job started on this worker."""
        return time.monotonic() - self.started

    def report(
        self,
        phase: str,
        step: int = 0,
        total: int | None = None,
        best_fitness: float | None = None,
        message: str | None = None,
        extra: dict[str, Any] | None = None,
        force: bool = False,
    ) -> None:
        """Records progress; raises :class:`Cancelled` when the user asked to cancel."""
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return
        self._last = now
        self.check_cancel()
        try:
            self.jobs.update_progress(
                self.job_id,
                Progress(
                    phase=phase,
                    step=step,
                    total=total,
                    best_fitness=best_fitness,
                    elapsed=self.elapsed,
                    message=message,
                    extra=extra or {},
                ),
            )
        except Conflict:
            raise Cancelled(f"job {self.job_id} is no longer running") from None
        except redis.RedisError as exc:
            self._unreachable(exc)
        else:
            self._redis_down = False

    def check_cancel(self) -> None:
        """Raises :class:`Cancelled` when a cancel was requested (not while Redis is away)."""
        try:
            requested = self.jobs.cancel_requested(self.job_id)
        except redis.RedisError as exc:
            self._unreachable(exc)
            return
        if requested:
            raise Cancelled(f"job {self.job_id} was cancelled")

    def _unreachable(self, exc: redis.RedisError) -> None:
        if not self._redis_down:  # once per outage
            log.warning("job %s: progress not recorded, Redis unreachable (%s)", self.job_id, exc)
        self._redis_down = True
