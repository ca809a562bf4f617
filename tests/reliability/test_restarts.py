"""`atnas serve` and its Redis killed and restarted under a running job, over real HTTP.

A Redis server of the test's own (append-only file on, on a free port) and `atnas serve`
processes joined to the session's Ray cluster. Each test kills one of them with SIGKILL while
a meta_train job runs, starts it again, and checks that the job ends once, succeeded, that
nothing was lost (the dataset and the job are still there) and that the service then runs a
new job.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis

from api.client import AtnasClient
from tests.conftest import Zips
from tests.ports import free_port
from tests.reliability.conftest import REPO, wait_for

pytestmark = [pytest.mark.reliability, pytest.mark.slow]
SPEC = {"way": 2, "preset": "tiny", "image_size": 16, "budget_seconds": 12}


class RedisServer:
    """``redis-server`` with AOF (fsync every write) in ``folder`` on a free port."""

    def __init__(self, folder: Path) -> None:
        if shutil.which("redis-server") is None:
            pytest.skip("no redis-server binary")
        self.folder, self.port = folder, free_port()
        folder.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder)]
        args += ["--appendonly", "yes", "--appendfsync", "always", "--save", ""]
        self.proc = subprocess.Popen(
            ["redis-server", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        r = redis.Redis.from_url(self.url)
        wait_for("redis to answer", lambda: _pings(r), timeout=20)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def _pings(r: redis.Redis) -> bool:
    try:
        return bool(r.ping())
    except redis.RedisError:
        return False


class Serve:
    """`atnas serve` on a free port with the given Redis and data folder."""

    def __init__(self, data: Path, redis_url: str, ray_address: str, name: str) -> None:
        self.port = free_port()
        env = {
            **os.environ,
            "OMP_NUM_THREADS": "1",
            "ATNAS_DATA_DIR": str(data),
            "ATNAS_PORT": str(self.port),
            "ATNAS_REDIS_URL": redis_url,
            "ATNAS_RAY_ADDRESS": ray_address,
            "ATNAS_HEARTBEAT_TTL_S": "3",
        }
        env.pop("ATNAS_API_KEYS", None)
        self.log = data / f"{name}.log"
        data.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "atnas_cli.main", "serve", "--max-jobs", "1"],
                env=env,
                cwd=REPO,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.client = AtnasClient(f"http://127.0.0.1:{self.port}", timeout=30)
        wait_for("atnas serve to be ready", self._ready, timeout=120, every=0.3)

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(self.log.read_text()[-3000:])
        try:
            self.client.ready()
            return True
        except Exception:
            return False

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture
def started(tmp_path: Path) -> Iterator[Callable[..., Serve]]:
    made: list[Serve] = []

    def start(data: Path, redis_url: str, ray_address: str, name: str) -> Serve:
        made.append(Serve(data, redis_url, ray_address, name))
        return made[-1]

    yield start
    for s in made:
        s.stop()


def _running(client: AtnasClient, job_id: str) -> Callable[[], bool]:
    def check() -> bool:
        job = client.job(job_id)
        return (
            job.status.value == "running"
            and job.progress is not None
            and (job.progress.phase == "meta_train")
        )

    return check


def _final(client: AtnasClient, job_id: str) -> Callable[[], object]:
    def check() -> object:
        try:
            job = client.job(job_id)
        except Exception:
            return None
        return job if job.status.terminal else None

    return check


def _dataset(client: AtnasClient, tmp: Path) -> str:
    zip_path = Zips.write(tmp / "c.zip", Zips.classes({f"g{k % 2}/c{k:02d}": 8 for k in range(24)}))
    return client.upload_dataset(zip_path).id


def test_redis_killed_and_restarted_under_a_running_job(
    tmp_path: Path, ray_address: str, started: Callable[..., Serve]
) -> None:
    server = RedisServer(tmp_path / "redis")
    try:
        serve = started(tmp_path / "data", server.url, ray_address, "serve")
        ds = _dataset(serve.client, tmp_path)
        job = serve.client.submit("meta_train", {"datasets": [ds], **SPEC})
        wait_for("the job to run", _running(serve.client, job.id), timeout=120, every=0.2)
        server.kill()
        outage = time.monotonic()
        resp = httpx.get(f"http://127.0.0.1:{serve.port}/v1/jobs/{job.id}", timeout=10)
        assert resp.status_code == 503 and "Redis" in resp.json()["detail"]
        time.sleep(3)  # the job keeps training; progress writes fail meanwhile
        server.start()  # the AOF brings every key back
        final = wait_for("the job to end", _final(serve.client, job.id), timeout=180, every=0.5)
        print(f"\nRedis down for {time.monotonic() - outage:.1f} s in all; job {final.status}")
        assert final.status.value == "succeeded", final.error
        assert [d.id for d in serve.client.datasets()] == [ds]
        assert [j.id for j in serve.client.jobs().items] == [job.id]  # nothing duplicated
        again = serve.client.submit("meta_train", {"datasets": [ds], **SPEC, "budget_seconds": 2})
        after = wait_for("a new job to end", _final(serve.client, again.id), timeout=180)
        assert after.status.value == "succeeded", after.error
    except AssertionError as exc:
        logs = (tmp_path / "data" / "serve.log").read_text(errors="replace")[-3000:]
        raise AssertionError(f"{exc}\n{logs}") from None
    finally:
        server.stop()


def test_atnas_serve_killed_and_restarted_under_a_running_job(
    tmp_path: Path, ray_address: str, started: Callable[..., Serve]
) -> None:
    server = RedisServer(tmp_path / "redis")
    data = tmp_path / "data"
    try:
        first = started(data, server.url, ray_address, "first")
        ds = _dataset(first.client, tmp_path)
        job = first.client.submit("meta_train", {"datasets": [ds], **SPEC})
        wait_for("the job to run", _running(first.client, job.id), timeout=120, every=0.2)
        first.kill()
        killed = time.monotonic()
        second = started(data, server.url, ray_address, "second")
        final = wait_for("the job to end", _final(second.client, job.id), timeout=180, every=0.5)
        print(f"\natnas serve restarted; the job ended {time.monotonic() - killed:.1f} s later")
        assert final.status.value == "succeeded", final.error
        record = redis.Redis.from_url(server.url, decode_responses=True).get(f"atnas:job:{job.id}")
        assert record is not None and '"attempts":2' in record.replace(" ", "")
        assert [j.id for j in second.client.jobs().items] == [job.id]
    except AssertionError as exc:
        logs = "".join(
            (data / f"{n}.log").read_text(errors="replace")[-2000:] for n in ("first", "second")
        )
        raise AssertionError(f"{exc}\n{logs}") from None
    finally:
        server.stop()
