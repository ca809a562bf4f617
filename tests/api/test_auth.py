"""Authentication and tenancy over real HTTP: 401s, and another tenant's records as 404s."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from fastapi import FastAPI

from api.app import create_app
from api.client import ApiError, AtnasClient
from api.services import Services
from service.auth import AuthConfigError
from service.settings import Settings
from tests.api.conftest import LiveServer
from tests.conftest import Zips

ACME, GLOBEX = "acme-key-0123456789", "globex-key-9876543210"


@pytest.fixture
def keyed(
    server: LiveServer,
    _uvicorn: tuple[FastAPI, str],
    settings: Settings,
    redis_client: redis.Redis,
) -> LiveServer:
    """The live server with two tenants' keys configured."""
    keyed_settings = settings.model_copy(update={"api_keys": f"acme:{ACME},globex:{GLOBEX}"})
    server.services = _uvicorn[0].state.services = Services.build(keyed_settings, redis_client)
    return server


@pytest.fixture
def acme(keyed: LiveServer) -> Iterator[AtnasClient]:
    with AtnasClient(keyed.url, api_key=ACME) as client:
        yield client


@pytest.fixture
def globex(keyed: LiveServer) -> Iterator[AtnasClient]:
    with AtnasClient(keyed.url, api_key=GLOBEX) as client:
        yield client


def test_v1_needs_a_key_and_says_how(keyed: LiveServer) -> None:
    for method, path in [
        ("GET", "/v1/jobs"),
        ("GET", "/v1/datasets"),
        ("GET", "/v1/supernets"),
        ("POST", "/v1/jobs"),
        ("POST", "/v1/datasets"),
        ("GET", "/v1/jobs/" + "0" * 32),
    ]:
        resp = keyed.http.request(method, path)
        assert resp.status_code == 401, (method, path)
        assert resp.headers["www-authenticate"] == 'Bearer realm="atnas"'
        assert "Authorization: Bearer" in resp.json()["detail"]
    resp = keyed.http.get("/v1/jobs", headers={"Authorization": "Bearer nope"})
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"] == 'Bearer realm="atnas", error="invalid_token"'
    resp = keyed.http.get("/v1/jobs", headers={"Authorization": f"Basic {ACME}"})
    assert resp.status_code == 401


def test_probes_stay_open_and_say_nothing_sensitive(keyed: LiveServer) -> None:
    assert keyed.http.get("/healthz").json() == {"status": "ok"}
    keyed.services.jobs.heartbeat("secret-host-name-1234", ttl_s=30)
    resp = keyed.http.get("/readyz")
    assert resp.status_code == 200 and resp.json() == {
        "status": "ready",
        "redis": True,
        "workers": 1,
    }
    assert "secret-host" not in resp.text


def test_a_tenant_sees_only_its_own_records(
    keyed: LiveServer,
    acme: AtnasClient,
    globex: AtnasClient,
    zips: type[Zips],
    tmp_path: Path,
    redis_client: redis.Redis,
) -> None:
    classes = zips.write(tmp_path / "c.zip", zips.classes({"Latin/a": 3, "Greek/b": 3}))
    task = zips.write(tmp_path / "t.zip", zips.task({"cat": 1, "dog": 1}))
    ds = acme.upload_dataset(classes)
    task_ds = acme.upload_dataset(task)
    job = acme.submit("meta_train", {"datasets": [ds.id], "way": 2}, idempotency_key="k")
    # A finished supernet of acme, to check that globex can neither list nor search it.
    jobs = keyed.services.jobs
    jobs.start(job.id, "w1")
    jobs.succeed(job.id, {"best_fitness": 0.5})
    keyed.services.artifacts.put_bytes(job.id, "meta.json", b"{}")

    assert [d.id for d in acme.datasets()] == [task_ds.id, ds.id]
    assert [j.id for j in acme.jobs().items] == [job.id]
    assert [s.id for s in acme.supernets()] == [job.id]
    assert acme.artifacts(job.id)[0].name == "meta.json"

    # globex: every read of acme's records is a 404 (never a 403), every list is empty.
    assert globex.datasets() == [] and globex.jobs().items == [] and globex.supernets() == []
    for call in (
        lambda: globex.dataset(ds.id),
        lambda: globex.job(job.id),
        lambda: globex.artifacts(job.id),
        lambda: globex.cancel(job.id),
        lambda: globex.delete_dataset(ds.id),
    ):
        with pytest.raises(ApiError) as err:
            call()
        assert err.value.status == 404
    as_globex = {"Authorization": f"Bearer {GLOBEX}"}
    resp = keyed.http.get(f"/v1/jobs/{job.id}/artifacts/meta.json", headers=as_globex)
    assert resp.status_code == 404
    resp = keyed.http.get("/v1/jobs?status=succeeded&kind=meta_train", headers=as_globex)
    assert resp.json()["items"] == []
    # Naming acme's data in a spec is an unknown reference for globex.
    for kind, spec in (
        ("meta_train", {"datasets": [ds.id], "way": 2}),
        ("search", {"supernet": job.id, "dataset": task_ds.id}),
    ):
        with pytest.raises(ApiError) as err:
            globex.submit(kind, spec)
        assert err.value.status == 422 and "no " in err.value.detail
    # The same Idempotency-Key is a different key for another tenant.
    g_ds = globex.upload_dataset(classes)
    g_job = globex.submit("meta_train", {"datasets": [g_ds.id], "way": 2}, idempotency_key="k")
    assert g_job.id != job.id
    assert [j.id for j in globex.jobs().items] == [g_job.id]
    # The keys are nowhere in Redis (job records, indexes, idempotency entries).
    for name in redis_client.scan_iter(f"{keyed.services.settings.key_prefix}:*"):
        if redis_client.type(name) == "string":
            value = str(redis_client.get(name))
            assert ACME not in value and GLOBEX not in value


def test_an_open_app_is_refused_outside_loopback(tmp_path: Path, redis_client: redis.Redis) -> None:
    with pytest.raises(AuthConfigError, match=r"refusing to serve on 0\.0\.0\.0"):
        create_app(Settings(data_dir=tmp_path, host="0.0.0.0"), redis=redis_client)
    create_app(Settings(data_dir=tmp_path, host="0.0.0.0", api_keys="a:k"), redis=redis_client)
    with pytest.raises(AuthConfigError, match="not 'tenant:key'"):
        create_app(Settings(data_dir=tmp_path, api_keys="nokey"), redis=redis_client)


def test_the_openapi_schema_declares_no_tenant_parameter(keyed: LiveServer) -> None:
    spec = httpx.get(f"{keyed.url}/openapi.json").json()
    params = [
        p["name"]
        for path in spec["paths"].values()
        for op in path.values()
        for p in op.get("parameters", [])
    ]
    assert "tenant" not in params and "request" not in params
