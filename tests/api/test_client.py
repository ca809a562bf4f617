from __future__ import annotations

import io
import threading
import time

import pytest

from api.client import ApiError, AtnasClient, WaitTimeout
from service.schemas import JobPublic, JobStatus, SearchConstraints, SearchSpec
from tests.api.conftest import LiveServer
from tests.conftest import Zips


def test_wait_returns_the_final_job(server: LiveServer, zips: type[Zips]) -> None:
    ds = server.services.datasets.create_from_upload(
        io.BytesIO(zips.classes({"a": 2, "b": 2})), "d.zip", 10**6
    )
    job = server.client.submit("meta_train", {"datasets": [ds.id], "way": 2})

    def worker() -> None:
        time.sleep(0.2)
        server.services.jobs.start(job.id, "w")
        time.sleep(0.2)
        server.services.jobs.succeed(job.id, {"ok": True})

    thread = threading.Thread(target=worker)
    thread.start()
    final = server.client.wait(job.id, timeout=10, poll=0.05)
    thread.join()
    assert final.status is JobStatus.succeeded and final.result == {"ok": True}

    other = server.client.submit("meta_train", {"datasets": [ds.id], "way": 3})
    with pytest.raises(WaitTimeout) as err:
        server.client.wait(other.id, timeout=0.1, poll=0.05)
    assert err.value.job.status is JobStatus.queued


def test_errors_are_typed(server: LiveServer) -> None:
    with pytest.raises(ApiError) as err:
        server.client.job("nope")
    assert (err.value.status, err.value.detail) == (404, "no job with id 'nope'")
    with pytest.raises(ApiError) as err:
        server.client.submit("meta_train", {"datasets": []})
    assert err.value.status == 422 and "datasets" in err.value.detail


def test_unreachable_service() -> None:
    import httpx

    with AtnasClient("http://127.0.0.1:9", timeout=1) as client, pytest.raises(httpx.ConnectError):
        client.health()


def test_search_takes_constraints_as_a_dict_a_model_or_fields(
    server: LiveServer, zips: type[Zips]
) -> None:
    ds = server.services.datasets.create_from_upload(
        io.BytesIO(zips.classes({"a": 2, "b": 2})), "d.zip", 10**6
    )
    task = server.services.datasets.create_from_upload(
        io.BytesIO(zips.task({"cat": 1, "dog": 1})), "t.zip", 10**6
    )
    net = server.client.submit("meta_train", {"datasets": [ds.id], "way": 2})
    server.services.jobs.start(net.id, "w")
    floor = {"macs": {"8": 500}, "params": {"8": 100}}  # 2 classes: 516 MACs, 118 params
    server.services.jobs.succeed(net.id, {"cost_floor": floor})

    def bounds(job: JobPublic) -> dict[str, object] | None:
        assert isinstance(job.spec, SearchSpec)
        c = job.spec.constraints
        return None if c is None else c.model_dump(exclude_none=True)

    plain = server.client.search(net.id, task.id, budget_seconds=5)
    assert bounds(plain) is None and plain.spec.budget_seconds == 5
    as_dict = server.client.search(net.id, task.id, constraints={"max_macs": 600})
    assert bounds(as_dict) == {"max_macs": 600}
    model = SearchConstraints(max_params=200, max_latency_ms=3.0)
    assert bounds(server.client.search(net.id, task.id, constraints=model)) == {
        "max_params": 200,
        "max_latency_ms": 3.0,
    }
    fields = server.client.search(net.id, task.id, constraints=model, max_params=150, seed=2)
    assert bounds(fields) == {"max_params": 150, "max_latency_ms": 3.0}
    via_submit = server.client.submit(
        "search", {"supernet": net.id, "dataset": task.id}, constraints={"max_macs": 516}
    )
    assert bounds(via_submit) == {"max_macs": 516}
    with pytest.raises(ApiError) as err:
        server.client.search(net.id, task.id, max_macs=515)
    assert err.value.status == 422
    assert err.value.detail.endswith(
        "the smallest net of this supernet's space costs 516 MACs for 2 classes"
    )
