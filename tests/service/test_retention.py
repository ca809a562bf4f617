"""Retention over a real Redis and real folders: what goes, what stays."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import redis

from atnas_cli.main import main
from service.artifacts import ArtifactStore
from service.errors import Conflict, JobNotFound
from service.jobs import JobRecord, JobStore
from service.retention import collect, supernets_in_use
from service.schemas import JobKind, JobStatus, MetaTrainSpec, SearchSpec
from service.settings import Settings

META = MetaTrainSpec(datasets=["0" * 32])


def _finished(jobs: JobStore, kind: JobKind = JobKind.meta_train, spec: object = META) -> JobRecord:
    job, _ = jobs.create(kind, spec)  # type: ignore[arg-type]
    jobs.start(job.id, "w")
    return jobs.succeed(job.id, {})


def _work(settings: Settings, job_id: str) -> Path:
    folder = settings.data_dir / "work" / job_id
    folder.mkdir(parents=True)
    (folder / "supernet.pt").write_bytes(b"x" * 100)
    return folder


@pytest.fixture
def settings(tmp_path: Path, key_prefix: str) -> Settings:
    return Settings(data_dir=tmp_path, key_prefix=key_prefix, work_retention_hours=1)


@pytest.fixture
def artifacts(settings: Settings) -> ArtifactStore:
    return ArtifactStore(settings.artifacts_dir)


def test_work_folders_of_finished_jobs_go_after_the_retention(
    settings: Settings, jobs: JobStore, artifacts: ArtifactStore
) -> None:
    done = _finished(jobs)
    running, _ = jobs.create(JobKind.meta_train, META)
    jobs.start(running.id, "w")
    folders = {j: _work(settings, j) for j in (done.id, running.id)}
    tune = settings.data_dir / "tune" / f"meta_train-{done.id}"
    tune.mkdir(parents=True)
    artifacts.put_bytes(done.id, "meta.json", b"{}")

    soon = collect(settings, jobs, artifacts)  # finished just now: within the hour
    assert soon.work_folders == [] and folders[done.id].exists()
    later = datetime.now(timezone.utc) + timedelta(hours=2)
    dry = collect(settings, jobs, artifacts, now=later, dry_run=True)
    assert dry.work_folders == [done.id] and folders[done.id].exists()
    report = collect(settings, jobs, artifacts, now=later)
    assert report.work_folders == [done.id] and report.jobs == []
    assert not folders[done.id].exists() and not tune.exists()
    assert folders[running.id].exists()  # a running job keeps its checkpoints
    assert artifacts.list(done.id) and jobs.get(done.id)  # no retention_days: kept


def test_old_jobs_go_with_their_artifacts_but_a_supernet_in_use_stays(
    settings: Settings, jobs: JobStore, artifacts: ArtifactStore, redis_client: redis.Redis
) -> None:
    settings = settings.model_copy(update={"retention_days": 7.0})
    old, in_use = _finished(jobs), _finished(jobs)
    for job in (old, in_use):
        artifacts.put_bytes(job.id, "supernet.pt", b"w" * 1000)
        _work(settings, job.id)
    search, _ = jobs.create(JobKind.search, SearchSpec(supernet=in_use.id, dataset="1" * 32))
    assert supernets_in_use(jobs) == {in_use.id}

    later = datetime.now(timezone.utc) + timedelta(days=8)
    dry = collect(settings, jobs, artifacts, now=later, dry_run=True)
    assert dry.jobs == [old.id] and dry.artifact_bytes == 1000
    assert "would remove 2 work folder(s), 1 job(s)" in dry.summary()  # both work folders
    assert jobs.get(old.id)  # a dry run removes nothing

    report = collect(settings, jobs, artifacts, now=later)
    assert report.jobs == [old.id] and report.kept_supernets == [in_use.id]
    with pytest.raises(JobNotFound):
        jobs.get(old.id)
    assert old.id not in [j.id for j in jobs.list(limit=1000)[0]]
    assert old.id not in [j.id for j in jobs.list(status=JobStatus.succeeded, limit=1000)[0]]
    assert artifacts.list(old.id) == []
    assert artifacts.list(in_use.id)[0].name == "supernet.pt"  # kept: a search reads it
    assert jobs.get(search.id).status is JobStatus.queued
    prefix = settings.key_prefix
    assert not any(old.id in name for name in redis_client.scan_iter(f"{prefix}:*"))


def test_a_running_job_cannot_be_deleted(jobs: JobStore) -> None:
    job, _ = jobs.create(JobKind.meta_train, META)
    with pytest.raises(Conflict):
        jobs.delete(job.id)
    jobs.request_cancel(job.id)
    jobs.delete(job.id)
    with pytest.raises(JobNotFound):
        jobs.get(job.id)


def test_orphan_work_folders_go_and_foreign_folders_stay(
    settings: Settings, jobs: JobStore, artifacts: ArtifactStore
) -> None:
    orphan = _work(settings, "a" * 32)
    foreign = settings.data_dir / "work" / "notes"
    foreign.mkdir()
    later = datetime.now(timezone.utc) + timedelta(hours=2)
    report = collect(settings, jobs, artifacts, now=later)
    assert report.work_folders == ["a" * 32] and not orphan.exists() and foreign.exists()


def test_the_gc_command_prints_one_line(
    settings: Settings,
    jobs: JobStore,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    redis_backend: str,
) -> None:
    if redis_backend != "server":
        pytest.skip("the command connects by URL")
    monkeypatch.setenv("ATNAS_REDIS_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("ATNAS_KEY_PREFIX", settings.key_prefix)
    monkeypatch.setenv("ATNAS_WORK_RETENTION_HOURS", "0")
    done = _finished(jobs)
    folder = _work(settings, done.id)
    assert main(["gc", "--data-dir", str(settings.data_dir), "--dry-run"]) == 0
    assert capsys.readouterr().out.startswith("would remove 1 work folder(s), 0 job(s)")
    assert main(["gc", "--data-dir", str(settings.data_dir)]) == 0
    assert capsys.readouterr().out.startswith("removed 1 work folder(s)")
    assert not folder.exists()
