"""benchmarks/cpu_use.py: CPU seconds per group of processes, read from /proc."""

from __future__ import annotations

import os
import subprocess
import sys
import time
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
    assert child.pid in cpu_use.pids_in(after, "other")
    assert child.pid not in cpu_use.pids_in(after, "ray train worker")
    assert use["other"] >= 0.5  # the child's busy loop, born between the snapshots
    assert all(v >= 0 for v in use.values())


def test_the_busiest_thread_of_a_process_is_split_into_cpu_wait_and_blocked() -> None:
    # The main thread spins for 0.6 s of CPU, a second thread sleeps; then both wait on stdin.
    code = (
        "import threading, time\n"
        "threading.Thread(target=time.sleep, args=(30,), daemon=True).start()\n"
        "t = time.process_time()\nwhile time.process_time() - t < 0.6: pass\ninput()\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE)
    try:
        before = cpu_use.thread_snapshot([child.pid])
        t0 = time.monotonic()
        for _ in range(400):
            after = cpu_use.thread_snapshot([child.pid])
            if after.get((child.pid, child.pid), (0.0, 0.0))[0] >= 0.55:
                break
            time.sleep(0.02)
        wall = time.monotonic() - t0
        time.sleep(0.2)  # blocked on stdin meanwhile
        wall += 0.2
        later = cpu_use.thread_snapshot([child.pid])
    finally:
        child.communicate(b"\n", timeout=30)
    assert len(after) >= 2  # the main thread and the sleeper
    (shares,) = cpu_use.thread_shares(before, later, wall)
    assert shares["pid"] == child.pid
    assert shares["on_cpu"] * wall >= 0.4  # most of the spin fell between the snapshots
    assert shares["other_threads_cpu"] < 0.1  # the sleeper used next to nothing
    assert shares["on_cpu"] + shares["waiting_for_cpu"] + shares["blocked"] >= 0.98
    assert shares["blocked"] > 0.0  # the 0.2 s on stdin at least
