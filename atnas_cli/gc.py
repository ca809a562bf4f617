"""``atnas gc``: apply the retention settings once (``service.retention``)."""

from __future__ import annotations

import argparse
import logging
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger("atnas")
# How often `atnas serve` applies the retention settings.
SWEEP_EVERY_S = 3600.0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Registers ``gc``."""
    p = sub.add_parser(
        "gc",
        help="remove old work folders, and old finished jobs when ATNAS_RETENTION_DAYS is set",
        description="Removes the work folders of jobs finished more than "
        "ATNAS_WORK_RETENTION_HOURS ago (default 24) and, when ATNAS_RETENTION_DAYS is set, "
        "finished jobs older than that with their artifacts. A supernet that a queued or "
        "running search uses is kept. `atnas serve` does the same every hour.",
    )
    p.add_argument(
        "--data-dir", type=Path, default=None, help="data directory (env ATNAS_DATA_DIR)"
    )
    p.add_argument("--dry-run", action="store_true", help="only say what would be removed")
    p.set_defaults(func=cmd_gc)


def cmd_gc(args: argparse.Namespace) -> int:
    """Prints one line: what was removed."""
    from service.redis_conn import connect
    from service.settings import Settings

    settings = Settings(**({"data_dir": args.data_dir} if args.data_dir else {}))
    print(run_once(settings, connect(settings), dry_run=args.dry_run).summary())
    return 0


def run_once(settings: Any, r: Any, dry_run: bool = False) -> Any:
    """One :func:`service.retention.collect` over the stores of ``settings`` and ``r``."""
    from service.artifacts import ArtifactStore
    from service.jobs import JobStore
    from service.keys import Keys
    from service.retention import collect

    jobs = JobStore(r, Keys(settings.key_prefix))
    return collect(settings, jobs, ArtifactStore(settings.artifacts_dir), dry_run=dry_run)


def start_sweeper(settings: Any, r: Any, every_s: float = SWEEP_EVERY_S) -> threading.Event:
    """A daemon thread that runs :func:`run_once` now and every ``every_s``; set the returned
    event to stop it. A failed sweep is logged and retried at the next one."""
    stop = threading.Event()

    def loop() -> None:
        while True:
            try:
                report = run_once(settings, r)
                if report.work_folders or report.jobs:
                    log.info("housekeeping: %s", report.summary())
            except Exception as exc:  # keep serving; the next sweep tries again
                log.warning("housekeeping failed: %s", exc)
            if stop.wait(every_s):
                return

    threading.Thread(target=loop, name="atnas-housekeeping", daemon=True).start()
    return stop
