"""``atnas wait JOB``: follows a job's live events until it ends, with a progress bar.

On a terminal the bar is redrawn in place on stderr; otherwise (a log, a pipe) each status or
phase change, and each progress step, is one plain line. Exit 0 when the job succeeded; 1 with
a one-line error when it failed or was cancelled; 2 when the service cannot tell (unknown job,
unreachable, timeout). A dropped stream (an API restart) is reopened until the timeout.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TYPE_CHECKING, TextIO

from atnas_cli.client import add_url_option
from atnas_cli.output import CliError, fail
from service.schemas import JobPublic, JobStatus

if TYPE_CHECKING:
    from api.client import AtnasClient

BAR_WIDTH = 30
# Pause before reopening a stream that ended without a terminal status.
REOPEN_S = 1.0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Registers ``atnas wait``."""
    p = sub.add_parser(
        "wait",
        help="follow a job until it finishes (a live progress bar); exit 1 unless it succeeded",
        description="Follows a job's live events until it finishes; exits 0 when it "
        "succeeded, 1 (with the job's error) when it failed or was cancelled.",
    )
    p.add_argument("job")
    add_url_option(p)
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds (default %(default)s)")
    p.add_argument("--json", action="store_true", help="print the final job as JSON on stdout")
    p.set_defaults(func=cmd_wait)


def render(job: JobPublic, tty: bool) -> str:
    """One line about the job: a bar with step/total on a terminal, plain words otherwise.

    >>> from service.schemas import Progress, SearchSpec
    >>> job = JobPublic(id="j", kind="search", status="running", created_at="2026-01-01T00:00Z",
    ...     spec=SearchSpec(supernet="s", dataset="d"),
    ...     progress=Progress(phase="search", step=3, total=10, best_fitness=0.8125, elapsed=4))
    >>> render(job, tty=False)
    'running  search 3/10  best 0.812  4s'
    >>> render(job, tty=True)
    'running  search [#########                     ] 3/10  best 0.812  4s'
    """
    parts = [job.status.value]
    p = job.progress
    if p is not None and job.status is JobStatus.running:
        where = p.phase
        if p.total:
            done = min(p.step, p.total)
            if tty:
                filled = round(BAR_WIDTH * done / p.total)
                where += f" [{'#' * filled}{' ' * (BAR_WIDTH - filled)}]"
            where += f" {p.step}/{p.total}"
        elif p.step:
            where += f" step {p.step}"
        parts.append(where)
        if p.best_fitness is not None:
            parts.append(f"best {p.best_fitness:.3f}")
        parts.append(f"{p.elapsed:.0f}s")
    return "  ".join(parts)


def follow(client: AtnasClient, job_id: str, timeout: float, out: TextIO, tty: bool) -> JobPublic:
    """Shows the job's events on ``out`` until it is terminal; returns its final state."""
    import httpx

    from api.client import ApiError

    deadline = time.monotonic() + timeout
    shown = ""
    last: JobPublic | None = None
    while True:
        left = deadline - time.monotonic()
        try:
            for ev in client.events(job_id, idle_timeout=max(1.0, min(60.0, left))):
                last = ev.job
                line = render(ev.job, tty)
                if line != shown:
                    if tty:
                        out.write("\r\x1b[2K" + line)
                    else:
                        out.write(line + "\n")
                    out.flush()
                    shown = line
                if ev.job.status.terminal:
                    if tty:
                        out.write("\n")
                    return ev.job
                if time.monotonic() >= deadline:
                    break
        except ApiError as exc:
            raise CliError(f"HTTP {exc.status}: {exc.detail}") from None
        except httpx.TimeoutException:
            pass  # no keep-alive within the idle timeout: reopen below (or time out)
        except httpx.HTTPError as exc:
            if last is None:
                raise CliError(f"cannot reach the service ({exc})") from None
        if time.monotonic() >= deadline:
            if tty:
                out.write("\n")
            status = last.status.value if last is not None else "unknown"
            raise CliError(f"job {job_id} still {status} after {timeout:.0f}s")
        time.sleep(min(REOPEN_S, max(0.0, deadline - time.monotonic())))


def cmd_wait(args: argparse.Namespace) -> int:
    from api.client import AtnasClient

    with AtnasClient(args.url) as client:
        job = follow(client, args.job, args.timeout, sys.stderr, sys.stderr.isatty())
    if args.json:
        print(json.dumps(job.model_dump(mode="json"), indent=2))
    if job.status is JobStatus.succeeded:
        if not args.json:
            print(f"{job.id}  succeeded")
        return 0
    reason = (job.error or "").strip().splitlines() or ["at a user's request"]
    fail(f"job {job.id} {job.status.value}: {reason[0]}", status=1)
