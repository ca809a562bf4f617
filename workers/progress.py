"""Progress and cancellation of a running job, written through the service's job store."""

from __future__ import annotations

import time
from typing import Any

from atnas.errors import Cancelled
from service.errors import Conflict
from service.jobs import JobStore
from service.schemas import Progress


class JobProgress:
    """Throttled progress writes (at most every ``interval`` seconds unless forced)."""

    def __init__(self, jobs: JobStore, job_id: str, interval: float = 0.5) -> None:
        self.jobs, self.job_id, self.interval = jobs, job_id, interval
        self.started = time.monotonic()
        self._last = 0.0

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

    def check_cancel(self) -> None:
        """Raises :class:`Cancelled` when a cancel was requested."""
        if self.jobs.cancel_requested(self.job_id):
            raise Cancelled(f"job {self.job_id} was cancelled")
