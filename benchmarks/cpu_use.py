"""Where a machine's CPU time goes: CPU seconds per group of processes between two snapshots.

Reads ``/proc/<pid>/stat`` (user + system time of each live process) and groups processes by
what they are to a Ray job: the Ray Train workers, Ray's own daemons (GCS, raylet, agents), the
Redis server, this process (a benchmark's driver and the dispatcher in it), and the rest. Linux
only; a process that exits between two snapshots loses what it used since the first.

>>> a = snapshot(); b = snapshot()
>>> use = cpu_seconds(a, b)
>>> all(v >= 0 for v in use.values())
True
"""

from __future__ import annotations

import os
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")

#: (group, substring of the command line), first match wins.
GROUPS: tuple[tuple[str, str], ...] = (
    ("ray train worker", "RayTrainWorker"),
    ("ray train controller", "TrainController"),
    ("ray train controller", "TrainTrainable"),
    ("ray actors (other)", "ray::"),
    ("ray gcs", "gcs_server"),
    ("ray raylet", "raylet"),
    ("ray agents", "dashboard/agent.py"),
    ("ray agents", "runtime_env/agent"),
    ("ray agents", "log_monitor"),
    ("ray agents", "monitor.py"),
    ("ray agents", "ray/dashboard"),
    ("redis-server", "redis-server"),
)


def group_of(pid: int, cmdline: str) -> str:
    """The group a process belongs to (``driver`` for this very process)."""
    if pid == os.getpid():
        return "driver (this process)"
    for name, needle in GROUPS:
        if needle in cmdline:
            return name
    return "other"


def snapshot() -> dict[int, tuple[str, float]]:
    """Every live process: pid -> (group, CPU seconds used so far)."""
    out: dict[int, tuple[str, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # gone meanwhile
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        utime, stime = int(fields[11]), int(fields[12])
        out[pid] = (group_of(pid, cmd), (utime + stime) / TICKS)
    return out


def cpu_seconds(
    before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]
) -> dict[str, float]:
    """CPU seconds each group used between the snapshots (processes born since count whole)."""
    use: dict[str, float] = {}
    for pid, (group, t) in after.items():
        start = before[pid][1] if pid in before else 0.0
        use[group] = use.get(group, 0.0) + max(0.0, t - start)
    return dict(sorted(use.items(), key=lambda kv: -kv[1]))
