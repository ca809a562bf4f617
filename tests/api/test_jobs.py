from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest

from service.schemas import DatasetPublic, JobKind, JobStatus
from tests.api.conftest import LiveServer
from tests.conftest import Zips


@pytest.fixture
def omni(server: LiveServer, zips: type[Zips]) -> DatasetPublic:
    data = zips.classes({"Latin/a": 3, "Latin/b": 3, "Greek/c": 2}, "images_background/")
    return server.services.datasets.create_from_upload(io.BytesIO(data), "o.zip", 10**6)


@pytest.fixture
def task(server: LiveServer, zips: type[Zips]) -> DatasetPublic:
    data = zips.task({"cat": 1, "dog": 1}, {"cat": 2, "dog": 2})
    return server.services.datasets.create_from_upload(io.BytesIO(data), "t.zip", 10**6)


def _meta(ds: DatasetPublic, **kw: Any) -> dict[str, Any]:
    return {"kind": "meta_train", "spec": {"datasets": [ds.id], **kw}}


def _supernet(server: LiveServer, ds: DatasetPublic, result: dict[str, Any] | None = None) -> str:
    """A succeeded meta_train job, made through the store as a worker would."""
    resp = server.http.post("/v1/jobs", json=_meta(ds, way=2))
    job_id = str(resp.json()["id"])
    server.services.jobs.start(job_id, "w")
    server.services.jobs.succeed(job_id, result or {"val_accuracy": 0.8})
    return job_id


def test_submit_and_get(server: LiveServer, omni: DatasetPublic) -> None:
    resp = server.http.post("/v1/jobs", json=_meta(omni, way=4, shot=1, budget_seconds=30))
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert body["status"] == "queued" and body["kind"] == "meta_train"
    assert resp.headers["location"] == f"/v1/jobs/{body['id']}"
    job = server.client.job(body["id"])
    assert job.status is JobStatus.queued and job.spec.budget_seconds == 30  # type: ignore[union-attr]
    claim = server.services.jobs.queue.claim("w", block_ms=10)
    assert claim is not None and claim.job_id == body["id"]


def test_progress_and_result_are_visible(server: LiveServer, omni: DatasetPublic) -> None:
    from service.schemas import Progress

    job = server.client.submit("meta_train", {"datasets": [omni.id], "way": 2})
    jobs = server.services.jobs
    jobs.start(job.id, "w")
    jobs.update_progress(job.id, Progress(phase="meta_train", step=2, total=9, best_fitness=0.4))
    got = server.http.get(f"/v1/jobs/{job.id}").json()
    assert got["status"] == "running"
    assert got["progress"]["step"] == 2 and got["progress"]["best_fitness"] == 0.4
    jobs.fail(job.id, "out of memory: lower spec.way")
    got = server.client.job(job.id)
    assert got.status is JobStatus.failed and got.error == "out of memory: lower spec.way"


def test_idempotency_key(server: LiveServer, omni: DatasetPublic) -> None:
    body = _meta(omni, way=2)
    first = server.http.post("/v1/jobs", json=body, headers={"Idempotency-Key": "abc"})
    again = server.http.post("/v1/jobs", json=body, headers={"Idempotency-Key": "abc"})
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    other = server.http.post(
        "/v1/jobs", json=_meta(omni, way=3), headers={"Idempotency-Key": "abc"}
    )
    assert other.status_code == 422 and "different request body" in other.json()["detail"]
    assert (
        server.client.submit("meta_train", body["spec"], idempotency_key="abc").id
        == first.json()["id"]
    )
    assert server.services.jobs.queue.length() == 1


def _m(**kw: Any) -> dict[str, Any]:
    """A meta_train body with a placeholder dataset id and ``kw`` in its spec."""
    return {"kind": "meta_train", "spec": {"datasets": ["x"], **kw}}


def _s(**kw: Any) -> dict[str, Any]:
    """A search body with placeholder ids and ``kw`` in its spec."""
    return {"kind": "search", "spec": {"supernet": "a", "dataset": "b", **kw}}


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"kind": "train", "spec": {}}, "kind"),
        ({"spec": {"datasets": ["x"]}}, "kind"),
        ({"kind": "meta_train"}, "spec"),
        ({"kind": "meta_train", "spec": {"datasets": "x"}}, "datasets"),
        (_m(datasets=[]), "datasets"),
        (_m(way="five"), "way"),
        (_m(way=1), "way"),
        (_m(shot=0), "shot"),
        (_m(budget_seconds=0), "budget_seconds"),
        (_m(budget_seconds=1e9), "budget_seconds"),
        (_m(budget_seconds="soon"), "budget_seconds"),
        (_m(algorithm="sgd"), "algorithm"),
        (_m(seed=-1), "spec.seed: Input should be greater than or equal to 0"),
        (_m(seed=2**80), "spec.seed: Input should be less than or equal to 4294967295"),
        (_m(iterations=1e30), "spec.iterations"),
        (_m(iterations=10_000_001), "spec.iterations: Input should be less than or equal"),
        (_s(seed=-1), "spec.seed"),
        (_s(constraints={"max_params": 10**16}), "spec.constraints.max_params"),
        (_m(channels=2), "channels"),
        (_m(final_pick="cheapest"), "spec.final_pick"),
        (_m(final_pick=1), "spec.final_pick"),
        (_m(focus=1.0), "spec.focus"),
        (_m(final_widen=2), "spec.final_widen"),
        (_m(widen_limit="macs"), "spec.widen_limit"),
        (_m(task_styles=1.5), "spec.task_styles: Input should be less than or equal to 1"),
        (_m(task_styles="some"), "spec.task_styles"),
        (_m(focus=0.5), "preset 'default' meta-trains one fixed net, without a search: focus"),
        (_m(preset="fixed128", final_widen=0.1), "final_widen would do nothing"),
        (_m(typo=1), "typo"),
        ({"kind": "meta_train", "spec": {"supernet": "a", "dataset": "b"}}, "datasets"),
        ({"kind": "search", "spec": {"datasets": ["x"]}}, "supernet"),
        (_s(budget_seconds=-1), "budget_seconds"),
        (_s(budget_seconds=86401), "budget_seconds"),
        (_s(population=1), "population"),
        (_s(generations=0), "generations"),
        (_s(supernet=123), "supernet"),
        (_s(constraints={"max_macs": 0}), "spec.constraints.max_macs: Input should be greater"),
        (_s(constraints={"max_macs": 1.5}), "spec.constraints.max_macs"),
        (_s(constraints={"max_params": -3}), "spec.constraints.max_params"),
        (_s(constraints={"max_latency_ms": "fast"}), "spec.constraints.max_latency_ms"),
        (_s(constraints={"max_latency_ms": 0}), "spec.constraints.max_latency_ms"),
        (_s(constraints={"max_flops": 1}), "spec.constraints.max_flops: Extra inputs"),
        (_s(constraints=[1]), "spec.constraints"),
        (_s(pixel_fallback="maybe"), "spec.pixel_fallback"),
        (_s(pixel_expert=-0.5), "spec.pixel_expert: Input should be greater than or equal"),
        (_s(pixel_expert="lots"), "spec.pixel_expert"),
    ],
)
def test_invalid_bodies_are_422_with_a_reason(
    server: LiveServer, body: dict[str, Any], fragment: str
) -> None:
    resp = server.http.post("/v1/jobs", json=body)
    assert resp.status_code == 422
    detail = resp.json()["detail"]
    assert isinstance(detail, str) and fragment in detail, detail
    assert "Traceback" not in resp.text
    assert server.services.jobs.queue.length() == 0


def test_not_json(server: LiveServer) -> None:
    resp = server.http.post(
        "/v1/jobs", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert resp.status_code == 422 and isinstance(resp.json()["detail"], str)


@pytest.mark.parametrize(
    ("kw", "fragment"),
    [
        ({"way": 13}, "13-way tasks need 13 classes; the selection has 12"),
        ({"way": 4, "rotations": False}, "the selection has 3"),
        ({"shot": 5, "way": 2}, "5-shot tasks need at least 6"),
        ({"way": 5}, "classes on each side of the fitness hold-out"),
        ({"include": ["Klingon"]}, "unknown group(s) ['Klingon']"),
        ({"datasets": ["no-such-dataset"]}, "no dataset with id 'no-such-dataset'"),
    ],
)
def test_impossible_meta_train_is_rejected_before_queueing(
    server: LiveServer, omni: DatasetPublic, kw: dict[str, Any], fragment: str
) -> None:
    resp = server.http.post("/v1/jobs", json=_meta(omni, **kw))
    assert resp.status_code == 422 and fragment in resp.json()["detail"]
    assert server.services.jobs.queue.length() == 0
    assert server.client.jobs().items == []


def test_search(server: LiveServer, omni: DatasetPublic, task: DatasetPublic) -> None:
    net = _supernet(server, omni)
    resp = server.http.post(
        "/v1/jobs",
        json={"kind": "search", "spec": {"supernet": net, "dataset": task.id, "budget_seconds": 5}},
    )
    assert resp.status_code == 202 and resp.json()["status"] == "queued"


def test_search_latency_bound_must_be_finite(server: LiveServer) -> None:
    body = b'{"kind": "search", "spec": {"supernet": "a", "dataset": "b", ' + (
        b'"constraints": {"max_latency_ms": 1e999}}}'
    )
    resp = server.http.post("/v1/jobs", content=body, headers={"content-type": "application/json"})
    assert resp.status_code == 422, resp.text
    assert "spec.constraints.max_latency_ms: Input should be a finite number" in resp.text


# The cheapest 2-class net of this (made-up) supernet: 1000 + 2*16 = 1032 MACs, 400 + 34 params.
FLOOR = {"macs": {"16": 1000, "32": 1500}, "params": {"16": 400, "32": 900}}


def test_search_constraints(server: LiveServer, omni: DatasetPublic, task: DatasetPublic) -> None:
    net = _supernet(server, omni, {"cost_floor": FLOOR})
    spec = {"supernet": net, "dataset": task.id}
    resp = server.http.post(
        "/v1/jobs", json={"kind": "search", "spec": {**spec, "constraints": {"max_macs": 1000}}}
    )
    assert resp.status_code == 422, resp.text
    assert resp.json() == {
        "detail": "spec.constraints.max_macs: 1000 cannot be met; the smallest net of this "
        "supernet's space costs 1032 MACs for 2 classes"
    }
    resp = server.http.post(
        "/v1/jobs", json={"kind": "search", "spec": {**spec, "constraints": {"max_params": 433}}}
    )
    assert resp.status_code == 422 and "has 434 parameters for 2 classes" in resp.text
    assert server.client.jobs(kind="search").items == []  # nothing stored, nothing queued
    assert server.services.jobs.queue.length() == 1  # the supernet's own meta_train job
    bounds = {"max_macs": 1032, "max_params": 434, "max_latency_ms": 2.5}
    resp = server.http.post(
        "/v1/jobs", json={"kind": "search", "spec": {**spec, "constraints": bounds}}
    )
    assert resp.status_code == 202, resp.text
    assert server.client.job(resp.json()["id"]).spec.constraints.model_dump() == bounds  # type: ignore[union-attr]


def test_search_bad_references(
    server: LiveServer, omni: DatasetPublic, task: DatasetPublic
) -> None:
    net = _supernet(server, omni)
    queued = server.client.submit("meta_train", {"datasets": [omni.id], "way": 2})
    cases = [
        ({"supernet": "nope", "dataset": task.id}, "no supernet with id 'nope'"),
        ({"supernet": queued.id, "dataset": task.id}, "is queued; only a succeeded one"),
        ({"supernet": net, "dataset": "nope"}, "no dataset with id 'nope'"),
        ({"supernet": net, "dataset": omni.id}, "is not a task dataset"),
    ]
    for spec, fragment in cases:
        resp = server.http.post("/v1/jobs", json={"kind": "search", "spec": spec})
        assert resp.status_code == 422 and fragment in resp.json()["detail"], resp.text


def test_unknown_job(server: LiveServer) -> None:
    for method, path in [
        ("GET", "/v1/jobs/nope"),
        ("POST", "/v1/jobs/nope/cancel"),
        ("GET", "/v1/jobs/nope/artifacts"),
        ("GET", "/v1/jobs/nope/artifacts/model.ts"),
    ]:
        resp = server.http.request(method, path)
        assert resp.status_code == 404 and resp.json() == {"detail": "no job with id 'nope'"}


def test_list_filter_and_paginate(
    server: LiveServer, omni: DatasetPublic, task: DatasetPublic
) -> None:
    net = _supernet(server, omni)
    ids = [
        server.client.submit("meta_train", {"datasets": [omni.id], "way": 2}).id for _ in range(3)
    ]
    search = server.client.submit("search", {"supernet": net, "dataset": task.id})
    page = server.client.jobs(limit=2)
    assert [j.id for j in page.items] == [search.id, ids[2]] and page.next_cursor
    page2 = server.client.jobs(limit=2, cursor=page.next_cursor)
    assert [j.id for j in page2.items] == [ids[1], ids[0]] and page2.next_cursor
    page3 = server.client.jobs(limit=2, cursor=page2.next_cursor)
    assert [j.id for j in page3.items] == [net] and page3.next_cursor is None
    assert [j.id for j in server.client.jobs(kind="search").items] == [search.id]
    assert [j.id for j in server.client.jobs(status="succeeded").items] == [net]
    assert len(server.client.jobs(status="queued", kind=JobKind.meta_train).items) == 3
    for query in ("status=done", "kind=x", "limit=0", "limit=5000", "cursor=abc"):
        resp = server.http.get(f"/v1/jobs?{query}")
        assert resp.status_code == 422 and isinstance(resp.json()["detail"], str), query


def test_cancel(server: LiveServer, omni: DatasetPublic) -> None:
    jobs = server.services.jobs
    queued = server.client.submit("meta_train", {"datasets": [omni.id], "way": 2})
    assert server.client.cancel(queued.id).status is JobStatus.cancelled
    assert server.client.cancel(queued.id).status is JobStatus.cancelled
    running = server.client.submit("meta_train", {"datasets": [omni.id], "way": 2})
    jobs.start(running.id, "w")
    assert server.client.cancel(running.id).status is JobStatus.running
    assert jobs.cancel_requested(running.id)
    jobs.mark_cancelled(running.id)
    assert server.client.job(running.id).status is JobStatus.cancelled
    done = _supernet(server, omni)
    resp = server.http.post(f"/v1/jobs/{done}/cancel")
    assert resp.status_code == 409 and "is succeeded" in resp.json()["detail"]


def test_supernets(server: LiveServer, omni: DatasetPublic) -> None:
    assert server.client.supernets() == []
    server.client.submit("meta_train", {"datasets": [omni.id], "way": 2})
    net = _supernet(server, omni)
    nets = server.client.supernets()
    assert [(n.id, n.way, n.shot, n.summary) for n in nets] == [(net, 2, 1, {"val_accuracy": 0.8})]


def test_an_oversized_body_is_a_413_before_parsing(server: LiveServer, omni: DatasetPublic) -> None:
    body = _meta(omni, way=4)
    body["spec"]["padding"] = "x" * (2 * 1024 * 1024)  # over the 1 MiB default
    resp = server.http.post("/v1/jobs", json=body)
    assert resp.status_code == 413 and "request body over 1048576 bytes" in resp.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
        yield b'{"kind": "meta_train", "spec": {"datasets": ["' + b"a" * 700_000
        yield b"b" * 700_000 + b'"]}}'

    resp = server.http.post(
        "/v1/jobs", content=chunks(), headers={"content-type": "application/json"}
    )
    assert resp.status_code == 413
    assert server.services.jobs.queue.length() == 0
    ok = server.http.post("/v1/jobs", json=_meta(omni, way=4))
    assert ok.status_code == 202, ok.text
