"""``atnas wait JOB`` against the live API: follows the events, exits by the job's outcome."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import redis

from atnas_cli.main import main
from atnas_cli.wait import follow, render
from service.schemas import JobPublic, JobStatus, Progress, SearchSpec
from service.settings import Settings
from tests.api.conftest import LiveServer
from tests.conftest import Zips
from tests.scripted import Script, scripted_dispatcher, submit_meta_train

pytestmark = pytest.mark.timeout(60)
# The command is the same over either Redis (tests/api/test_events.py covers both).
server_redis = pytest.mark.parametrize("redis_backend", ["server"], indirect=True)


@server_redis
def test_wait_shows_progress_lines_and_exits_0_when_the_job_succeeds(
    server: LiveServer,
    settings: Settings,
    redis_client: redis.Redis,
    tmp_path: Path,
    zips: type[Zips],
    capsys: pytest.CaptureFixture[str],
) -> None:
    job_id = submit_meta_train(server, tmp_path, zips)
    with scripted_dispatcher(settings, redis_client, Script(steps=3, step_s=0.4)):
        rc = main(["wait", job_id, "--url", server.url, "--timeout", "30"])
    out, err = capsys.readouterr()
    assert rc == 0
    assert out.strip() == f"{job_id}  succeeded"
    lines = err.splitlines()  # not a terminal: one plain line per change
    assert lines[0] == "queued" or lines[0].startswith("running")
    assert any(line.startswith("running  meta_train ") and "/30" in line for line in lines)
    assert lines[-1] == "succeeded"


@server_redis
def test_wait_exits_1_with_the_jobs_error_on_one_line(
    server: LiveServer,
    settings: Settings,
    redis_client: redis.Redis,
    tmp_path: Path,
    zips: type[Zips],
    capsys: pytest.CaptureFixture[str],
) -> None:
    job_id = submit_meta_train(server, tmp_path, zips)
    with (
        scripted_dispatcher(settings, redis_client, Script(steps=1, step_s=0.1, fail="x")),
        pytest.raises(SystemExit) as exc,
    ):
        main(["wait", job_id, "--url", server.url, "--timeout", "30"])
    assert exc.value.code == 1
    err_lines = capsys.readouterr().err.splitlines()
    assert err_lines[-1].startswith(f"atnas: error: job {job_id} failed: internal error")


@server_redis
def test_wait_for_an_unknown_job_or_too_long_exits_2(
    server: LiveServer, tmp_path: Path, zips: type[Zips], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["wait", "0" * 32, "--url", server.url])
    assert exc.value.code == 2
    assert "HTTP 404: no job with id" in capsys.readouterr().err
    job_id = submit_meta_train(server, tmp_path, zips)  # no worker: stays queued
    with pytest.raises(SystemExit) as exc:
        main(["wait", job_id, "--url", server.url, "--timeout", "1"])
    assert exc.value.code == 2
    assert f"job {job_id} still queued after 1s" in capsys.readouterr().err


@server_redis
def test_on_a_terminal_the_bar_is_redrawn_in_place(
    server: LiveServer,
    settings: Settings,
    redis_client: redis.Redis,
    tmp_path: Path,
    zips: type[Zips],
) -> None:
    job_id = submit_meta_train(server, tmp_path, zips)
    out = io.StringIO()
    with scripted_dispatcher(settings, redis_client, Script(steps=2, step_s=0.4)):
        job = follow(server.client, job_id, 30, out, tty=True)
    assert job.status.value == "succeeded"
    text = out.getvalue()
    assert "\n" not in text[:-1] and text.endswith("succeeded\n")  # one line, redrawn
    assert "\r\x1b[2K" in text and ("] 10/20" in text or "] 20/20" in text)


def test_render() -> None:
    job = JobPublic(
        id="j",
        kind="search",
        status="running",
        created_at="2026-01-01T00:00:00Z",
        spec=SearchSpec(supernet="s", dataset="d"),
        progress=Progress(phase="search", step=3, total=10, best_fitness=0.8125, elapsed=4),
    )
    assert render(job, tty=False) == "running  search 3/10  best 0.812  4s"
    assert render(job, tty=True) == f"running  search [{'#' * 9}{' ' * 21}] 3/10  best 0.812  4s"
    done = job.model_copy(update={"status": JobStatus.succeeded})
    assert render(done, tty=True) == "succeeded"
