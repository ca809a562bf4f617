"""benchmarks/cpu_use.py: CPU seconds per group of processes, read from /proc."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import cpu_use

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="Linux /proc only")


def test_processes_are_grouped_by_what_they_are_to_a_ray_job() -> None:
    assert cpu_use.group_of(1, "ray::RayTrainWorker.train_fn") == "ray train worker"
    assert cpu_use.group_of(1, "ray::EvaluatorActor.score") == "ray actors (other)"
    assert cpu_use.group_of(1, "/x/ray/core/src/ray/gcs/gcs_server --a") == "ray gcs"
    assert cpu_use.group_of(1, "/usr/bin/redis-server 127.0.0.1:6379") == "redis-server"
    assert cpu_use.group_of(os.getpid(), "python -m pytest") == "driver (this process)"
    assert cpu_use.group_of(1, "/sbin/init") == "other"


def test_a_busy_process_is_counted_and_an_idle_one_is_not() -> None:
    busy = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.6: pass\n"
    before = cpu_use.snapshot()
    child = subprocess.Popen([sys.executable, "-c", busy + "input()"], stdin=subprocess.PIPE)
    try:
        # measure while the child is alive (after it exits, /proc no longer lists it)
        deadline = 0
        while True:
            after = cpu_use.snapshot()
            if after.get(child.pid, ("", 0.0))[1] >= 0.6 or deadline > 200:
                break
            deadline += 1
            subprocess.run(["sleep", "0.05"], check=True)
        use = cpu_use.cpu_seconds(before, after)
    finally:
        child.communicate(b"\n", timeout=30)
    assert after[child.pid][0] == "other"
    assert use["other"] >= 0.5  # the child's busy loop, born between the snapshots
    assert all(v >= 0 for v in use.values())
