from __future__ import annotations

import pytest

from api.client import ApiError
from tests.api.conftest import LiveServer


def test_healthz(server: LiveServer) -> None:
    assert server.client.health() == {"status": "ok"}


def test_readyz_needs_a_live_worker(server: LiveServer) -> None:
    resp = server.http.get("/readyz")
    assert resp.status_code == 503 and "no live worker" in resp.json()["detail"]
    with pytest.raises(ApiError) as err:
        server.client.ready()
    assert err.value.status == 503
    server.services.jobs.heartbeat("ray-worker-1", ttl_s=30)
    assert server.client.ready() == {"status": "ready", "redis": True, "workers": 1}


def test_openapi_documents_the_upload(server: LiveServer) -> None:
    spec = server.http.get("/openapi.json").json()
    body = spec["paths"]["/v1/datasets"]["post"]["requestBody"]["content"]
    assert "file" in body["multipart/form-data"]["schema"]["properties"]
    assert {"/v1/jobs", "/v1/supernets", "/readyz"} <= set(spec["paths"])
