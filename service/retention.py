"""Housekeeping: what a finished job leaves on disk and in Redis, removed after a while.

Two settings decide (``service.settings``):

- ``work_retention_hours`` (default 24): a finished job's *work folder* (checkpoints, exports
  before they became artifacts: ``<data>/work/<id>``) and its Tune folder
  (``<data>/train/meta_train-<id>``) go once the job has been finished this long. Nothing a
  user downloads is in them. A work folder whose job record no longer exists goes too.
- ``retention_days`` (default None: kept for ever): a finished job older than this loses its
  artifacts and its record. A supernet (a meta_train job) that a queued or running search
  uses is kept, whatever its age.

``atnas gc`` runs :func:`collect` once; ``atnas serve`` runs it every hour.

Example:
    >>> report = collect(settings, jobs, artifacts)              # doctest: +SKIP
    >>> report.summary()                                          # doctest: +SKIP
    'removed 3 work folders, 2 jobs (41.0 MB of artifacts); kept 1 supernet in use'
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from service.artifacts import ArtifactStore
from service.errors import Conflict, NotFound
from service.ids import is_id
from service.jobs import JobRecord, JobStore
from service.schemas import JobStatus, SearchSpec
from service.settings import Settings

FINISHED = (JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled)


@dataclass
class GcReport:
    """What one :func:`collect` removed (or would remove, in a dry run)."""

    dry_run: bool = False
    work_folders: list[str] = field(default_factory=list)
    jobs: list[str] = field(default_factory=list)
    artifact_bytes: int = 0
    kept_supernets: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for a log or the CLI."""
        verb = "would remove" if self.dry_run else "removed"
        kept = (
            f"; kept {len(self.kept_supernets)} supernet(s) in use" if self.kept_supernets else ""
        )
        return (
            f"{verb} {len(self.work_folders)} work folder(s), {len(self.jobs)} job(s) "
            f"({self.artifact_bytes / 1e6:.1f} MB of artifacts){kept}"
        )


def collect(
    settings: Settings,
    jobs: JobStore,
    artifacts: ArtifactStore,
    now: datetime | None = None,
    dry_run: bool = False,
) -> GcReport:
    """Applies the retention settings once; see the module docstring."""
    now = now or datetime.now(timezone.utc)
    report = GcReport(dry_run=dry_run)
    work_cutoff = now - timedelta(hours=settings.work_retention_hours)
    job_cutoff = (
        None if settings.retention_days is None else now - timedelta(days=settings.retention_days)
    )
    in_use = supernets_in_use(jobs)
    finished = {job.id: job for job in _finished_jobs(jobs)}
    for job in finished.values():
        ended = job.finished_at or job.created_at
        if job_cutoff is not None and ended < job_cutoff:
            if job.id in in_use:
                report.kept_supernets.append(job.id)
            else:
                _remove_job(settings, jobs, artifacts, job, report, dry_run)
                continue
        if ended < work_cutoff:
            _remove_work(settings, job.id, report, dry_run)
    for folder in _work_folders(settings):  # folders of jobs whose record is gone
        if folder.name in finished or not _orphan(jobs, folder.name):
            continue
        modified = datetime.fromtimestamp(folder.stat().st_mtime, timezone.utc)
        if modified < work_cutoff:
            _remove_work(settings, folder.name, report, dry_run)
    return report


def supernets_in_use(jobs: JobStore) -> set[str]:
    """Ids of the meta_train jobs that a queued or running search job reads."""
    used = set()
    for status in (JobStatus.queued, JobStatus.running):
        for job in _all(jobs, status):
            if isinstance(job.spec, SearchSpec):
                used.add(job.spec.supernet)
    return used


def _all(jobs: JobStore, status: JobStatus) -> list[JobRecord]:
    out: list[JobRecord] = []
    cursor: str | None = None
    while True:
        page, cursor = jobs.list(status=status, limit=1000, cursor=cursor)
        out.extend(page)
        if cursor is None:
            return out


def _finished_jobs(jobs: JobStore) -> list[JobRecord]:
    return [job for status in FINISHED for job in _all(jobs, status)]


def _orphan(jobs: JobStore, job_id: str) -> bool:
    if not is_id(job_id):
        return False  # not a job folder: leave it alone
    try:
        jobs.get(job_id)
    except NotFound:
        return True
    return False


def _work_folders(settings: Settings) -> list[Path]:
    root = settings.data_dir / "work"
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def _job_folders(settings: Settings, job_id: str) -> list[Path]:
    """The work folder and the Tune folder of a job, those that exist."""
    candidates = [
        settings.data_dir / "work" / job_id,
        settings.data_dir / "train" / f"meta_train-{job_id}",  # Ray Train's run folder
        settings.data_dir / "tune" / f"meta_train-{job_id}",  # before Ray Train (Tune)
    ]
    return [p for p in candidates if p.exists()]


def _remove_work(settings: Settings, job_id: str, report: GcReport, dry_run: bool) -> None:
    folders = _job_folders(settings, job_id)
    if not folders:
        return
    report.work_folders.append(job_id)
    if not dry_run:
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)


def _remove_job(
    settings: Settings,
    jobs: JobStore,
    artifacts: ArtifactStore,
    job: JobRecord,
    report: GcReport,
    dry_run: bool,
) -> None:
    size = sum(info.size for info in artifacts.list(job.id))
    _remove_work(settings, job.id, report, dry_run)
    if dry_run:
        report.jobs.append(job.id)
        report.artifact_bytes += size
        return
    try:
        jobs.delete(job.id)  # the record first: nobody can be handed a half-removed job
    except (NotFound, Conflict):
        return  # removed meanwhile, or re-queued: leave it
    artifacts.delete_job(job.id)
    report.jobs.append(job.id)
    report.artifact_bytes += size
