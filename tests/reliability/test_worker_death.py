"""Processes die under running jobs (SIGKILL); the jobs still end once, with a reason.

- the Ray worker process of a meta_train trial: Tune restarts the trial from its checkpoint;
- an evaluator actor's process during a search: Ray restarts it and retries its calls;
- a whole dispatcher: another one takes the job over within the heartbeat TTL + ~2 s;
- a job that kills every dispatcher that runs it: failed at the attempts cap, with the reason.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import ray
import redis

from service.jobs import JobRecord
from service.schemas import JobKind, JobStatus, SearchSpec
from service.settings import Settings
from tests.reliability.conftest import (
    Service,
    drop_keys,
    log_tail,
    make_settings,
    meta_train_spec,
    spawn_dispatcher,
    upload_classes,
    wait_final,
    wait_for,
)
from workers.context import WorkerContext
from workers.dispatcher import Dispatcher
from workers.meta_train_job import CHECKPOINT, TRIAL_PIDS

pytestmark = pytest.mark.reliability
RECOVER_WITHIN_S = 15.0


def _pids(work: Path) -> list[int]:
    """The pid of each process that ran the job's trial, first to last."""
    try:
        return [int(line) for line in (work / TRIAL_PIDS).read_text().split()]
    except (OSError, ValueError):
        return []


def test_a_killed_trial_process_restarts_from_its_checkpoint(
    service: Service, figure: Callable[[str, float], None]
) -> None:
    job_id = service.submit(meta_train_spec(service.classes, budget=8))
    work = service.settings.data_dir / "work" / job_id
    wait_for(
        "a checkpoint and the trial's pid",
        lambda: (work / CHECKPOINT).exists() and _pids(work),
        timeout=120,
    )
    first = _pids(work)[-1]
    os.kill(first, signal.SIGKILL)
    killed = time.monotonic()
    wait_for("a new trial process", lambda: len(_pids(work)) == 2, timeout=60)
    figure("meta_train trial process killed: a new trial process after", time.monotonic() - killed)
    job = wait_final(service.jobs, job_id)
    assert job.status is JobStatus.succeeded, job.error
    assert job.attempts == 1  # restarted by Tune inside the same job run, not re-queued
    assert len(_pids(work)) == 2 and _pids(work)[1] != first  # restarted once, elsewhere
    assert job.result is not None and job.result["iterations"] > 0
    assert job.result["workers"] == 2  # "auto" on the 2-CPU test cluster: restarted with both


def test_a_killed_evaluator_process_does_not_stop_the_search(
    service: Service, figure: Callable[[str, float], None]
) -> None:
    spec = SearchSpec(supernet=service.large, dataset=service.task, population=32, generations=2)
    job_id = service.submit(spec)

    def searching() -> bool:
        p = service.jobs.get(job_id).progress
        return p is not None and p.phase == "search"

    wait_for("the search to start", searching, timeout=120)
    actor = service.dispatcher.ctx.pool.actors[0]
    pid = ray.get(actor.pid.remote())
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    job = wait_final(service.jobs, job_id)
    assert job.status is JobStatus.succeeded, job.error
    assert job.attempts == 1
    assert ray.get(actor.pid.remote(), timeout=60) != pid  # the actor runs in a new process
    figure("search with an evaluator process killed: finished after", time.monotonic() - killed)


@pytest.fixture
def own_settings(
    ray_address: str, redis_url: str, tmp_path: Path
) -> Iterator[Callable[..., Settings]]:
    """Settings of a service of the test's own (a key prefix and data folder of its own)."""
    made: list[Settings] = []

    def make(**kw: object) -> Settings:
        made.append(make_settings(tmp_path / "data", redis_url, ray_address, **kw))
        return made[-1]

    yield make
    for s in made:
        drop_keys(s)


def test_a_dead_dispatchers_meta_train_is_finished_by_another(
    own_settings: Callable[..., Settings], figure: Callable[[str, float], None]
) -> None:
    settings = own_settings()  # the default heartbeat TTL (9 s)
    r = redis.Redis.from_url(str(settings.redis_url), decode_responses=True)
    survivor = Dispatcher(settings, r, max_jobs=1, worker_id="survivor")
    job, _ = survivor.jobs.create(
        JobKind.meta_train, meta_train_spec(upload_classes(survivor), budget=10)
    )
    doomed = spawn_dispatcher(settings, "real", "doomed")
    try:
        work = settings.data_dir / "work" / job.id
        wait_for(
            "the doomed dispatcher to checkpoint the job",
            lambda: doomed.poll() is None and (work / CHECKPOINT).exists(),
            timeout=120,
        )
        assert survivor.jobs.get(job.id).worker == "doomed"
        survivor.start()  # idle beside it: it must not touch a live worker's job
        time.sleep(0.5)
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(10)
        killed = time.monotonic()

        def restarted() -> bool:
            j = survivor.jobs.get(job.id)
            return j.status is not JobStatus.running or j.worker == "survivor"

        wait_for("the job to restart elsewhere", restarted, timeout=60, every=0.1)
        recovered = time.monotonic() - killed
        figure("dispatcher SIGKILLed mid meta_train: job running again after", recovered)
        final = wait_final(survivor.jobs, job.id)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{log_tail(settings, 'doomed')}") from None
    finally:
        if doomed.poll() is None:
            doomed.kill()
        survivor.stop(timeout=2.0)
        survivor.ctx.shutdown()
        r.close()
    assert final.status is JobStatus.succeeded, final.error
    assert final.attempts == 2 and final.worker == "survivor"
    assert recovered <= RECOVER_WITHIN_S
    assert survivor.jobs.queue.pending() == 0 and survivor.jobs.queue.length() == 0


def _succeed(ctx: WorkerContext, job: JobRecord) -> dict[str, Any]:
    return {"ran": True}


def test_a_job_that_kills_its_workers_fails_at_the_attempts_cap(
    own_settings: Callable[..., Settings], figure: Callable[[str, float], None]
) -> None:
    settings = own_settings(heartbeat_ttl_s=1.5)  # short, so three deaths take seconds
    r = redis.Redis.from_url(str(settings.redis_url), decode_responses=True)
    last = Dispatcher(
        settings, r, max_jobs=1, worker_id="last", runners=dict.fromkeys(JobKind, _succeed)
    )
    job, _ = last.jobs.create(JobKind.search, SearchSpec(supernet="s", dataset="d"))
    # Three dispatchers that each SIGKILL themselves when they start the job: the first one
    # takes it from the queue, the others take it over from the dead.
    victims = [spawn_dispatcher(settings, "suicide", f"victim{k}") for k in range(3)]
    try:
        for v in victims:
            v.wait(120)
        assert [v.returncode for v in victims] == [-signal.SIGKILL] * 3
        assert last.jobs.get(job.id).attempts == 3
        started = time.monotonic()
        last.start()
        final = wait_final(last.jobs, job.id, timeout=30)
        figure("attempts cap: a 4th dispatcher failed the job after", time.monotonic() - started)
        # The service is healthy after: the next job runs, once.
        after, _ = last.jobs.create(JobKind.search, SearchSpec(supernet="s", dataset="d"))
        next_job = wait_final(last.jobs, after.id, timeout=30)
    except AssertionError as exc:
        logs = "\n".join(log_tail(settings, f"victim{k}") for k in range(3))
        raise AssertionError(f"{exc}\n{logs}") from None
    finally:
        for v in victims:
            if v.poll() is None:
                v.kill()
        last.stop(timeout=2.0)
        r.close()
    assert final.status is JobStatus.failed
    assert final.error is not None and final.error.startswith(
        "the job's worker died 3 times (attempts cap ATNAS_MAX_ATTEMPTS=3); last worker victim"
    )
    assert next_job.status is JobStatus.succeeded and next_job.attempts == 1
    assert last.jobs.queue.pending() == 0 and last.jobs.queue.length() == 0
