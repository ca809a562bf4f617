"""Ids of the wrong shape are unknown at once: never a Redis key, never echoed back whole."""

from __future__ import annotations

import redis

from service.ids import is_id, new_id, shown
from service.keys import Keys
from tests.api.conftest import LiveServer


def test_id_shape() -> None:
    assert is_id(new_id()) and new_id() != new_id()
    for bad in ("", "nope", "A" * 32, new_id() + ":cancel", new_id()[:31], "../" + new_id()[3:]):
        assert not is_id(bad), bad
    assert shown("abc") == "'abc'"
    long = shown("x" * 10_000_000)
    assert len(long) < 80 and "10000000 characters" in long


def test_a_redis_key_beside_a_job_is_not_a_job(
    server: LiveServer, redis_client: redis.Redis
) -> None:
    # The cancel flag lives at <job key>:cancel; reading it as a job was a 500.
    job_id = new_id()
    redis_client.set(Keys(server.services.settings.key_prefix).job_cancel(job_id), "1")
    for path in (f"/v1/jobs/{job_id}:cancel", f"/v1/jobs/{job_id}:cancel/artifacts"):
        resp = server.http.get(path)
        assert resp.status_code == 404, (path, resp.text)
        assert resp.json()["detail"] == f"no job with id '{job_id}:cancel'"
    assert server.http.post(f"/v1/jobs/{job_id}:cancel/cancel").status_code == 404


def test_a_huge_id_gets_a_short_404(server: LiveServer) -> None:
    huge = "a" * 60_000
    for method, path in (
        ("GET", f"/v1/jobs/{huge}"),
        ("POST", f"/v1/jobs/{huge}/cancel"),
        ("GET", f"/v1/jobs/{huge}/artifacts/model.ts"),
        ("GET", f"/v1/datasets/{huge}"),
        ("DELETE", f"/v1/datasets/{huge}"),
    ):
        resp = server.http.request(method, path)
        assert resp.status_code == 404, (method, path[:30], resp.status_code)
        assert len(resp.content) < 300 and "60000 characters" in resp.json()["detail"]
