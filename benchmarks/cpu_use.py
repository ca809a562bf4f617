"""Where a machine's CPU time goes: CPU seconds per group of processes between two snapshots.

Reads ``/proc/<pid>/stat`` (user + system time of each live process) and groups processes by
what they are to a Ray job: the Ray Train workers, Ray's own daemons (GCS, raylet, agents), the
Redis server, this process (a benchmark's driver and the dispatcher in it), and the rest. Linux
only; a process that exits between two snapshots loses what it used since the first.

:func:`thread_snapshot` and :func:`thread_shares` look inside one group's processes, thread by
thread, from ``/proc/<pid>/task/<tid>/schedstat``: the time each thread ran on a CPU and the time
it waited, runnable, for one (preempted by other processes). For a Ray Train worker the busiest
thread is its training loop; the rest of its wall-clock time it was blocked (in a collective
call waiting for the other workers, or in I/O).

>>> a = snapshot(); b = snapshot()
>>> use = cpu_seconds(a, b)
>>> all(v >= 0 for v in use.values())
True
>>> me = thread_snapshot([os.getpid()])
>>> sorted(thread_shares(me, me, 1.0)[0])
['blocked', 'on_cpu', 'other_threads_cpu', 'pid', 'waiting_for_cpu']
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


def pids_in(snap: dict[int, tuple[str, float]], group: str) -> list[int]:
    """The processes of ``snap`` that belong to ``group``."""
    return [pid for pid, (g, _) in snap.items() if g == group]


def cpu_seconds(
    before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]
) -> dict[str, float]:
    """CPU seconds each group used between the snapshots (processes born since count whole)."""
    use: dict[str, float] = {}
    for pid, (group, t) in after.items():
        start = before[pid][1] if pid in before else 0.0
        use[group] = use.get(group, 0.0) + max(0.0, t - start)
    return dict(sorted(use.items(), key=lambda kv: -kv[1]))


#: (pid, tid) -> (seconds on a CPU, seconds runnable but waiting for a CPU).
Threads = dict[tuple[int, int], tuple[float, float]]


def thread_snapshot(pids: list[int]) -> Threads:
    """Every thread of the live processes ``pids``: CPU and wait seconds."""
    out: Threads = {}
    for pid in pids:
        try:
            tasks = list(Path(f"/proc/{pid}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                run_ns, wait_ns, *_ = (task / "schedstat").read_text().split()
            except (OSError, ValueError):
                continue
            out[(pid, int(task.name))] = (int(run_ns) / 1e9, int(wait_ns) / 1e9)
    return out


def thread_shares(before: Threads, after: Threads, wall: float) -> list[dict[str, float]]:
    """Per process, its busiest thread's shares of ``wall`` seconds: on a CPU, waiting for one
    (runnable, preempted) and blocked (the rest), with the CPU cores its other threads used."""
    by_pid: dict[int, list[tuple[float, float]]] = {}
    for (pid, tid), (run, wait) in after.items():
        run0, wait0 = before.get((pid, tid), (0.0, 0.0))
        by_pid.setdefault(pid, []).append((max(0.0, run - run0), max(0.0, wait - wait0)))
    out = []
    for pid, threads in sorted(by_pid.items()):
        threads.sort(reverse=True)
        run, wait = threads[0]
        out.append(
            {
                "pid": pid,
                "on_cpu": round(run / wall, 3),
                "waiting_for_cpu": round(wait / wall, 3),
                "blocked": round(max(0.0, 1.0 - (run + wait) / wall), 3),
                "other_threads_cpu": round(sum(r for r, _ in threads[1:]) / wall, 3),
            }
        )
    return out
