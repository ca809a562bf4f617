from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from api.client import ApiError
from service.schemas import JobKind, MetaTrainSpec
from tests.api.conftest import LiveServer
from tests.conftest import Zips


@pytest.fixture
def job_id(server: LiveServer, zips: type[Zips]) -> str:
    ds = server.services.datasets.create_from_upload(
        io.BytesIO(zips.classes({"a": 2, "b": 2})), "d.zip", 10**6
    )
    job, _ = server.services.jobs.create(JobKind.meta_train, MetaTrainSpec(datasets=[ds.id]))
    return job.id


def test_list_and_download(server: LiveServer, job_id: str, tmp_path: Path) -> None:
    dest = tmp_path / "downloads"
    dest.mkdir()
    assert server.client.artifacts(job_id) == []
    store = server.services.artifacts
    model = bytes(range(256)) * 1000
    store.put_bytes(job_id, "model.ts", model)
    store.put_bytes(job_id, "metrics.json", b'{"accuracy": 0.9}')
    listed = server.http.get(f"/v1/jobs/{job_id}/artifacts").json()
    metrics_sha = hashlib.sha256(b'{"accuracy": 0.9}').hexdigest()
    assert listed == [
        {"name": "metrics.json", "size": 17, "sha256": metrics_sha},
        {"name": "model.ts", "size": len(model), "sha256": hashlib.sha256(model).hexdigest()},
    ]
    path = server.client.download(job_id, "model.ts", dest)
    assert path == dest / "model.ts" and path.read_bytes() == model
    other = server.client.download(job_id, "metrics.json", dest / "sub" / "m.json")
    assert other.read_text() == '{"accuracy": 0.9}'
    assert sorted(p.name for p in dest.rglob("*")) == ["m.json", "model.ts", "sub"]
    resp = server.http.get(f"/v1/jobs/{job_id}/artifacts/model.ts")
    assert resp.headers["x-content-sha256"] == hashlib.sha256(model).hexdigest()


def test_unknown_and_bad_names(server: LiveServer, job_id: str, tmp_path: Path) -> None:
    dest = tmp_path / "downloads"
    dest.mkdir()
    resp = server.http.get(f"/v1/jobs/{job_id}/artifacts/model.ts")
    assert resp.status_code == 404 and "has no artifact 'model.ts'" in resp.json()["detail"]
    resp = server.http.get(f"/v1/jobs/{job_id}/artifacts/.meta")
    assert resp.status_code == 422 and "invalid artifact name" in resp.json()["detail"]
    with pytest.raises(ApiError) as err:
        server.client.download(job_id, "nope.bin", dest)
    assert err.value.status == 404
    assert list(dest.iterdir()) == []  # nothing half-written
