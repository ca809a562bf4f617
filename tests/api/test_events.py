"""GET /v1/jobs/{id}/events over real HTTP: a job's life as server-sent events, then the end."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
import redis
from fastapi import FastAPI

from api.routes import events
from api.services import Services
from api.sse import ServerEvent, parse_events
from service.schemas import JobPublic, JobStatus
from service.settings import Settings
from tests.api.conftest import LiveServer
from tests.conftest import Zips
from tests.scripted import Script, scripted_dispatcher, submit_meta_train

pytestmark = pytest.mark.timeout(60)


def _follow(
    server: LiveServer, job_id: str, settings: Settings, r: redis.Redis, script: Script
) -> list[ServerEvent]:
    """The job's events: the first before any worker runs, the rest while one runs it."""
    with server.http.stream("GET", f"/v1/jobs/{job_id}/events", timeout=30) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        assert resp.headers["cache-control"] == "no-cache"
        stream = parse_events(resp.iter_lines())
        got = [next(stream)]
        with scripted_dispatcher(settings, r, script):
            got.extend(stream)  # ends when the server closes the stream
    return got


def test_events_follow_a_job_from_queued_through_running_to_succeeded(
    server: LiveServer,
    settings: Settings,
    redis_client: redis.Redis,
    tmp_path: Path,
    zips: type[Zips],
) -> None:
    job_id = submit_meta_train(server, tmp_path, zips)
    got = _follow(server, job_id, settings, redis_client, Script(steps=3, step_s=0.4))
    jobs = [JobPublic.model_validate_json(e.data) for e in got]
    assert {j.id for j in jobs} == {job_id}
    assert got[0].event == "status" and jobs[0].status is JobStatus.queued
    # One status event per change, in the order the job lived them.
    assert [j.status for e, j in zip(got, jobs, strict=True) if e.event == "status"] == [
        JobStatus.queued,
        JobStatus.running,
        JobStatus.succeeded,
    ]
    # Progress events in between, steps rising as the worker wrote them.
    steps = [
        j.progress.step
        for e, j in zip(got, jobs, strict=True)
        if e.event == "progress" and j.progress
    ]
    assert len(steps) >= 2 and steps == sorted(steps) and steps[-1] >= 20
    assert [int(e.id or -1) for e in got] == list(range(len(got)))  # numbered, none skipped
    final = jobs[-1]
    assert final.result is not None and final.result["artifacts"] == ["meta.json"]
    assert final.progress is not None and final.progress.step == 30
    assert server.client.job(job_id).status is JobStatus.succeeded


def test_events_end_with_the_error_of_a_failed_job(
    server: LiveServer,
    settings: Settings,
    redis_client: redis.Redis,
    tmp_path: Path,
    zips: type[Zips],
) -> None:
    job_id = submit_meta_train(server, tmp_path, zips)
    got = _follow(server, job_id, settings, redis_client, Script(steps=1, step_s=0.1, fail="x"))
    last = JobPublic.model_validate_json(got[-1].data)
    assert got[-1].event == "status" and last.status is JobStatus.failed
    assert last.error and "internal error" in last.error


def test_a_finished_job_gives_one_event_and_the_stream_closes(
    server: LiveServer,
    settings: Settings,
    redis_client: redis.Redis,
    tmp_path: Path,
    zips: type[Zips],
) -> None:
    job_id = submit_meta_train(server, tmp_path, zips)
    server.client.cancel(job_id)
    t0 = time.monotonic()
    resp = server.http.get(f"/v1/jobs/{job_id}/events")  # reads to the end: must not hang
    assert time.monotonic() - t0 < 5
    got = list(parse_events(resp.text.splitlines()))
    assert (
        len(got) == 1 and JobPublic.model_validate_json(got[0].data).status is JobStatus.cancelled
    )


def test_unknown_job_is_404_before_any_stream(server: LiveServer) -> None:
    for job_id in ("0" * 32, "not-an-id"):
        resp = server.http.get(f"/v1/jobs/{job_id}/events")
        assert resp.status_code == 404
        assert resp.headers["content-type"] == "application/json"
        assert "no job with id" in resp.json()["detail"]


def test_another_tenants_job_is_404_and_no_key_is_401(
    server: LiveServer,
    _uvicorn: tuple[FastAPI, str],
    settings: Settings,
    redis_client: redis.Redis,
    tmp_path: Path,
    zips: type[Zips],
) -> None:
    keyed = settings.model_copy(
        update={"api_keys": "acme:acme-key-0123456789,globex:globex-key-98765"}
    )
    server.services = _uvicorn[0].state.services = Services.build(keyed, redis_client)
    acme = {"Authorization": "Bearer acme-key-0123456789"}
    globex = {"Authorization": "Bearer globex-key-98765"}
    data = zips.classes({f"c{i}": 3 for i in range(4)})
    ds = server.http.post(
        "/v1/datasets", files={"file": ("c.zip", data, "application/zip")}, headers=acme
    ).json()
    job = server.http.post(
        "/v1/jobs",
        json={"kind": "meta_train", "spec": {"datasets": [ds["id"]], "way": 2}},
        headers=acme,
    ).json()
    url = f"/v1/jobs/{job['id']}/events"
    assert server.http.get(url).status_code == 401
    assert server.http.get(url, headers=globex).status_code == 404
    with server.http.stream("GET", url, headers=acme) as resp:
        assert resp.status_code == 200
        first = next(parse_events(resp.iter_lines()))
    assert JobPublic.model_validate_json(first.data).id == job["id"]


def test_keep_alive_comments_and_a_client_that_leaves_stops_the_server_loop(
    server: LiveServer, tmp_path: Path, zips: type[Zips], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events, "KEEP_ALIVE_S", 0.4)
    job_id = submit_meta_train(server, tmp_path, zips)  # stays queued: no worker
    before = events.open_streams()
    with (
        httpx.Client(base_url=server.url, timeout=10) as http,
        http.stream("GET", f"/v1/jobs/{job_id}/events") as resp,
    ):
        lines = resp.iter_lines()
        seen: list[str] = []
        deadline = time.monotonic() + 5
        while ": keep-alive" not in seen and time.monotonic() < deadline:
            seen.append(next(lines))
        assert ": keep-alive" in seen
        assert events.open_streams() == before + 1
    # The client closed the connection: the server's loop must notice and end.
    deadline = time.monotonic() + 5
    while events.open_streams() > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert events.open_streams() == before
