"""The job state machine: every allowed status change, in one place.

Example:
    >>> check_transition("j1", JobStatus.queued, JobStatus.running)
    >>> check_transition("j1", JobStatus.succeeded, JobStatus.running)
    Traceback (most recent call last):
    ...
    service.errors.IllegalTransition: job 'j1' is succeeded; it cannot become running
"""

from __future__ import annotations

from service.errors import IllegalTransition
from service.schemas import JobStatus

_S = JobStatus

TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    _S.queued: frozenset({_S.running, _S.cancelled}),
    # running -> queued only re-queues the job of a worker that crashed.
    _S.running: frozenset({_S.succeeded, _S.failed, _S.cancelled, _S.queued}),
    _S.succeeded: frozenset(),
    _S.failed: frozenset(),
    _S.cancelled: frozenset(),
}


def can_transition(src: JobStatus, dst: JobStatus) -> bool:
    """True when a job may move from ``src`` to ``dst``."""
    return dst in TRANSITIONS[src]


def check_transition(job_id: str, src: JobStatus, dst: JobStatus) -> None:
    """Raises :class:`IllegalTransition` unless ``src -> dst`` is allowed."""
    if not can_transition(src, dst):
        raise IllegalTransition(f"job {job_id!r} is {src.value}; it cannot become {dst.value}")
