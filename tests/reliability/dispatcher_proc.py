"""A dispatcher in a process of its own, for the fault tests to kill.

``python -m tests.reliability.dispatcher_proc MODE WORKER_ID``, settings from ``ATNAS_*``:

- ``real``: runs jobs with the real runners on the Ray cluster at ``ATNAS_RAY_ADDRESS``;
- ``suicide``: SIGKILLs its own process when a job starts (a job that kills its worker).

It runs until it is killed (or gets SIGTERM).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from typing import Any

from service.jobs import JobRecord
from service.redis_conn import connect
from service.schemas import JobKind
from service.settings import Settings
from workers.context import WorkerContext
from workers.dispatcher import Dispatcher, Runner


def _suicide(ctx: WorkerContext, job: JobRecord) -> dict[str, Any]:
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable")


def main() -> None:
    mode, worker_id = sys.argv[1], sys.argv[2]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = Settings()
    runners: dict[JobKind, Runner] | None = None
    if mode == "real":
        from workers.runtime import init_ray

        init_ray(settings.ray_address)
    elif mode == "suicide":
        runners = dict.fromkeys(JobKind, _suicide)
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    dispatcher = Dispatcher(
        settings, connect(settings), max_jobs=1, worker_id=worker_id, runners=runners
    )
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    dispatcher.start()
    done.wait()
    dispatcher.stop(timeout=2.0)


if __name__ == "__main__":
    main()
