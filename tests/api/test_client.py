from __future__ import annotations

import io
import threading
import time

import pytest

from api.client import ApiError, AtnasClient, WaitTimeout
from service.schemas import JobStatus
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
