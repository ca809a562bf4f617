"""A crashed `atnas serve` leaves no process behind, and a restart finds its data.

`atnas serve` runs as a subprocess with its own local Ray and the embedded Redis (the
defaults of a new user); the test kills it with SIGKILL and watches every process it had.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from api.client import AtnasClient
from tests.conftest import Zips
from tests.ports import free_port

pytestmark = pytest.mark.slow
GONE_WITHIN_S = 15.0


class Serve:
    """`atnas serve` on a free port over ``data_dir``."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        env = {**os.environ, "ATNAS_DATA_DIR": str(data_dir), "ATNAS_PORT": str(self.port)}
        for name in ("ATNAS_RAY_ADDRESS", "ATNAS_REDIS_URL", "ATNAS_API_KEYS", "RAY_ADDRESS"):
            env.pop(name, None)
        self.log = data_dir / f"serve-{self.port}.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "atnas_cli.main", "serve", "--ray-cpus", "1"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=data_dir,
                start_new_session=True,
            )
        self.client = AtnasClient(f"http://127.0.0.1:{self.port}", timeout=30)

    def wait_ready(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(self.log.read_text()[-3000:])
            try:
                self.client.ready()
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise AssertionError("not ready: " + self.log.read_text()[-3000:]) from None
                time.sleep(0.5)

    def processes(self) -> list[psutil.Process]:
        """Every process this serve runs: its descendants and the embedded Redis server."""
        procs = psutil.Process(self.proc.pid).children(recursive=True)
        registry = self.data_dir / "redis.db.settings"
        pidfile = Path(json.loads(registry.read_text())["pidfile"])
        procs.append(psutil.Process(int(pidfile.read_text().strip())))
        return procs

    def close(self) -> None:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def serves(tmp_path: Path) -> Iterator[list[Serve]]:
    started: list[Serve] = []
    yield started
    for s in started:
        s.close()


def _left(procs: list[psutil.Process], timeout: float) -> tuple[list[str], float]:
    """Processes still running after up to ``timeout`` seconds, and the seconds it took."""
    t0 = time.monotonic()
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    alive = [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    return [f"{p.pid} {p.name()}" for p in alive], time.monotonic() - t0


def test_sigkill_leaves_no_orphans_and_a_restart_keeps_the_data(
    serves: list[Serve], tmp_path: Path, zips: type[Zips]
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    first = Serve(data)
    serves.append(first)
    first.wait_ready()
    ds = first.client.upload_dataset(
        zips.write(tmp_path / "c.zip", zips.classes({"Latin/a": 2, "Greek/b": 2}))
    )
    procs = first.processes()
    names = {p.name() for p in procs}
    assert {"raylet", "gcs_server", "redis-server"} <= names, names

    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(10)
    left, seconds = _left(procs, GONE_WITHIN_S)
    assert left == [], f"orphans after {seconds:.1f} s: {left}"
    print(f"\n{len(procs)} processes gone {seconds:.1f} s after SIGKILL of atnas serve")

    second = Serve(data)
    serves.append(second)
    second.wait_ready()
    assert [d.id for d in second.client.datasets()] == [ds.id]  # the embedded Redis saved it
    procs = second.processes()
    second.proc.send_signal(signal.SIGTERM)  # a clean stop leaves nothing either
    second.proc.wait(60)
    left, _ = _left(procs, GONE_WITHIN_S)
    assert left == []
