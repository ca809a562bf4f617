"""Fixtures of the fault tests: real Redis, the session's Ray cluster, dispatchers in this
process and in processes of their own, small datasets and supernets, and the figures measured.

Every test here injects one fault (a SIGKILL, a second delivery, a cancel, a full disk) and
checks that no job is lost or run twice, that each ends in a final status with a reason, and
that the service still runs the next job. Times are measured and printed at the end of the
run (section "reliability figures"); docs/reliability.md records them.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis

from atnas.evolution import random_encode
from atnas.metatrain import Member, MetaState, MetaTrainConfig
from atnas.space import SearchSpace
from atnas.supernet import Supernet
from service.jobs import JobRecord, JobStore
from service.schemas import JobKind, MetaTrainSpec, SearchSpec
from service.settings import Settings
from tests.conftest import REDIS_SERVER_URL, Zips
from workers.dispatcher import Dispatcher
from workers.meta_train_job import cost_floor
from workers.search_job import SUPERNET_ARTIFACT

REPO = Path(__file__).resolve().parents[2]
FIGURES: list[str] = []
WAY = 5


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Prints the figures the fault tests measured."""
    if FIGURES:
        terminalreporter.section("reliability figures")
        for line in FIGURES:
            terminalreporter.write_line(line)


@pytest.fixture
def figure() -> Callable[[str, float], None]:
    """Records a measured time (printed now, and in the run's summary)."""

    def record(what: str, seconds: float) -> None:
        line = f"{what}: {seconds:.2f} s"
        FIGURES.append(line)
        print(line)

    return record


@pytest.fixture(scope="session")
def redis_url(_server_redis: redis.Redis | None, _embedded_redis: Any) -> str:
    """A Redis that other processes reach too: the server, else the embedded one's socket."""
    if _server_redis is not None:
        return REDIS_SERVER_URL
    return f"unix://{_embedded_redis.socket_file}?db=0"


def make_settings(data_dir: Path, redis_url: str, ray_address: str, **kw: Any) -> Settings:
    """Settings of a test service with its own key prefix and data folder."""
    return Settings(
        data_dir=data_dir,
        redis_url=redis_url,
        ray_address=ray_address,
        key_prefix=f"atnas-rel-{uuid.uuid4().hex[:10]}",
        evaluators=2,
        **kw,
    )


def drop_keys(settings: Settings) -> None:
    """Removes every Redis key of ``settings``' prefix."""
    r = redis.Redis.from_url(str(settings.redis_url), decode_responses=True)
    keys = list(r.scan_iter(match=f"{settings.key_prefix}:*", count=1000))
    if keys:
        r.delete(*keys)
    r.close()


def wait_for(what: str, ok: Callable[[], Any], timeout: float, every: float = 0.05) -> Any:
    """Polls ``ok()`` until it returns something true; AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = ok()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def wait_final(jobs: JobStore, job_id: str, timeout: float = 120.0) -> JobRecord:
    """The job once it is succeeded, failed or cancelled."""

    def final() -> JobRecord | None:
        job = jobs.get(job_id)
        return job if job.status.terminal else None

    job: JobRecord = wait_for(f"job {job_id} to end", final, timeout)
    return job


def meta_train_spec(dataset: str, budget: float, workers: int | None = None) -> MetaTrainSpec:
    """A meta_train job of the tiny preset on 16-pixel images: a few seconds of work."""
    spec = MetaTrainSpec(
        datasets=[dataset], way=2, preset="tiny", image_size=16, budget_seconds=budget
    )
    return spec if workers is None else spec.model_copy(update={"workers": workers})


def upload_classes(dispatcher: Dispatcher) -> str:
    """A class-folder dataset of 24 classes in 2 groups (8 images each); its id."""
    data = Zips.classes({f"g{k % 2}/c{k:02d}": 8 for k in range(24)})
    return dispatcher.ctx.datasets.create_from_upload(io.BytesIO(data), "classes.zip", 10**7).id


def large_state() -> MetaState:
    """An untrained supernet of the default 7-op space at 28 pixels: ~40 ms per candidate."""
    space = SearchSpace()
    rng = np.random.default_rng(0)
    members: list[Member] = []
    while len(members) < 8:
        e = random_encode(space, rng)
        if all(m.encode != e for m in members):
            members.append(Member(e, 0.5 - 0.01 * len(members)))
    config = MetaTrainConfig(image_size=28, iterations=1, budget_seconds=None, preset="default")
    return MetaState(space, config, Supernet(space, seed=0), members)


def add_supernet(dispatcher: Dispatcher, state: MetaState, tmp: Path) -> str:
    """A succeeded meta_train job holding ``state`` as its supernet.pt; its id."""
    jobs, artifacts = dispatcher.jobs, dispatcher.ctx.artifacts
    job, _ = jobs.create(JobKind.meta_train, MetaTrainSpec(datasets=["x"]))
    path = tmp / f"{job.id}.pt"
    state.save(path)
    artifacts.put_file(job.id, SUPERNET_ARTIFACT, path)
    jobs.start(job.id, "fixture")  # as a worker leaves it (its queue entry is then skipped)
    jobs.succeed(job.id, {"cost_floor": cost_floor(state)})
    return job.id


@dataclass
class Service:
    """A running dispatcher (in this process) with its data: what the shared tests use."""

    settings: Settings
    dispatcher: Dispatcher
    classes: str  # a class-folder dataset for meta_train jobs
    task: str  # a 5-way 3-shot task dataset
    large: str  # a supernet of the default space (searches of population 256 take a while)

    @property
    def jobs(self) -> JobStore:
        return self.dispatcher.jobs

    def submit(self, spec: MetaTrainSpec | SearchSpec) -> str:
        kind = JobKind.meta_train if isinstance(spec, MetaTrainSpec) else JobKind.search
        job, _ = self.jobs.create(kind, spec)
        return job.id


@pytest.fixture(scope="package")
def service(
    ray_address: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    """One dispatcher (3 jobs at once, 2 evaluators) shared by the tests of this package."""
    tmp = tmp_path_factory.mktemp("reliability")
    settings = make_settings(tmp / "data", redis_url, ray_address)
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    dispatcher = Dispatcher(settings, r, max_jobs=3)
    classes = upload_classes(dispatcher)
    data = Zips.task({f"c{k}": 3 for k in range(WAY)}, {f"c{k}": 2 for k in range(WAY)})
    task = dispatcher.ctx.datasets.create_from_upload(io.BytesIO(data), "task.zip", 10**7).id
    large = add_supernet(dispatcher, large_state(), tmp)
    dispatcher.start()
    try:
        yield Service(settings, dispatcher, classes, task, large)
    finally:
        dispatcher.stop(timeout=2.0)
        dispatcher.ctx.shutdown()
        drop_keys(settings)
        r.close()


def spawn_dispatcher(settings: Settings, mode: str, worker_id: str) -> subprocess.Popen[bytes]:
    """A dispatcher process (see dispatcher_proc.py) with ``settings``; logs in its data dir."""
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "ATNAS_DATA_DIR": str(settings.data_dir),
        "ATNAS_KEY_PREFIX": settings.key_prefix,
        "ATNAS_REDIS_URL": str(settings.redis_url),
        "ATNAS_RAY_ADDRESS": str(settings.ray_address),
        "ATNAS_HEARTBEAT_TTL_S": str(settings.heartbeat_ttl_s),
        "ATNAS_MAX_ATTEMPTS": str(settings.max_attempts),
        "ATNAS_EVALUATORS": "1",
    }
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    log = open(settings.data_dir / f"{worker_id}.log", "wb")  # noqa: SIM115 (the child owns it)
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.dispatcher_proc", mode, worker_id],
            env=env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    finally:
        log.close()


def log_tail(settings: Settings, worker_id: str) -> str:
    """The end of a dispatcher process's log (for failure messages)."""
    path = settings.data_dir / f"{worker_id}.log"
    return path.read_text(errors="replace")[-3000:] if path.exists() else "(no log)"
