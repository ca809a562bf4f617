"""Served models over real HTTP: a real search job's model.ts deployed on Ray Serve in the
session's local Ray cluster, queried, checked against model.ts itself, redeployed by a
second app after its deployment was lost, and removed; bad input and other tenants' ids.

Serve is shut down when the module ends, so it does not leak into other tests.
"""

from __future__ import annotations

import base64
import io
import json
import socket
import threading
import time
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import redis
import torch
import uvicorn
from fastapi import FastAPI
from PIL import Image

from api.app import create_app
from atnas.data import ImageConfig, decode_image
from service.artifacts import ArtifactStore
from service.datasets import DatasetStore
from service.jobs import JobStore
from service.keys import Keys
from service.schemas import JobKind, MetaTrainSpec, SearchSpec
from service.settings import Settings
from tests.api.conftest import LiveServer
from tests.atnas.conftest import tiny_state
from tests.conftest import Zips
from workers.context import WorkerContext
from workers.meta_train_job import cost_floor
from workers.search_job import SUPERNET_ARTIFACT, run_search
from workers.serving import RayServeRuntime, app_name

pytestmark = pytest.mark.timeout(120)
WAY = 3
MAX_IMAGES = 8
ALICE, BOB = "alice-key-0123456789", "bob-key-9876543210"


@contextmanager
def live(app: FastAPI) -> Iterator[str]:
    """``app`` on uvicorn in a thread on a free loopback port; yields its URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@dataclass
class Served:
    """The module's service: a succeeded search job, its model deployed, clients of two tenants."""

    settings: Settings
    redis: redis.Redis
    url: str
    alice: httpx.Client
    bob: httpx.Client
    search: str  # alice's succeeded search job
    meta_train: str  # alice's meta_train job (its supernet)
    model: str  # the search job's model, deployed
    query: list[tuple[str, bytes]]  # the task's query images as files

    def model_ts(self) -> torch.jit.ScriptModule:
        path = self.settings.artifacts_dir / self.search / "model.ts"
        model: torch.jit.ScriptModule = torch.jit.load(str(path))  # type: ignore[no-untyped-call]
        return model.eval()


def _search_job(ctx: WorkerContext, tmp: Path) -> tuple[str, str, bytes]:
    """(meta_train id, search id, task zip): a search run by the worker code, as a worker
    leaves it (tiny supernet, 3-way 3-shot task of 8-pixel images, a few seconds)."""
    state = tiny_state()
    meta, _ = ctx.jobs.create(JobKind.meta_train, MetaTrainSpec(datasets=["x"]), tenant="alice")
    state.save(tmp / "supernet.pt")
    ctx.artifacts.put_file(meta.id, SUPERNET_ARTIFACT, tmp / "supernet.pt")
    ctx.jobs.start(meta.id, "w")
    ctx.jobs.succeed(meta.id, {"cost_floor": cost_floor(state)})
    classes = {f"c{k}": 3 for k in range(WAY)}
    data = Zips.task(classes, {name: 2 for name in classes})
    task = ctx.datasets.create_from_upload(io.BytesIO(data), "task.zip", 10**6).id
    spec = SearchSpec(
        supernet=meta.id, dataset=task, population=2, generations=1, budget_seconds=60
    )
    job, _ = ctx.jobs.create(JobKind.search, spec, tenant="alice")
    ctx.jobs.start(job.id, "w")
    ctx.jobs.succeed(job.id, run_search(ctx, ctx.jobs.get(job.id)))
    return meta.id, job.id, data


@pytest.fixture(scope="module")
def served(
    ray_address: str,
    _server_redis: redis.Redis | None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Served]:
    if _server_redis is None:
        pytest.skip("no Redis server at 127.0.0.1:6379")
    r = _server_redis
    tmp = tmp_path_factory.mktemp("models")
    settings = Settings(
        data_dir=tmp / "data",
        key_prefix=f"atnas-test-models-{uuid.uuid4().hex[:12]}",
        api_keys=f"alice:{ALICE},bob:{BOB}",
        evaluators=1,
        model_max_images=MAX_IMAGES,
        model_switch_interval_ms=2.0,  # neither Python's 5 ms nor the default 0.5 ms
        model_calls_per_replica=2,  # 4 calls in flight to the 2 replicas, not the default 2
    )
    keys = Keys(settings.key_prefix)
    ctx = WorkerContext(
        settings,
        JobStore(r, keys),
        DatasetStore(r, keys, settings.datasets_dir),
        ArtifactStore(settings.artifacts_dir),
    )
    runtime = RayServeRuntime(settings)
    try:
        meta, search, data = _search_job(ctx, tmp)
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            query = [(n, zf.read(n)) for n in sorted(zf.namelist()) if n.startswith("query/")]
        with (
            live(create_app(settings, r, runtime)) as url,
            httpx.Client(base_url=url, timeout=60, headers=_auth(ALICE)) as alice,
            httpx.Client(base_url=url, timeout=60, headers=_auth(BOB)) as bob,
        ):
            resp = alice.post("/v1/models?wait=true", json={"job": search, "replicas": 2})
            assert resp.status_code == 201, resp.text
            yield Served(settings, r, url, alice, bob, search, meta, resp.json()["id"], query)
    finally:
        runtime.shutdown()
        ctx.shutdown()
        for key in r.scan_iter(match=f"{settings.key_prefix}:*", count=1000):
            r.delete(key)


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _files(images: list[tuple[str, bytes]]) -> list[tuple[str, Any]]:
    return [("files", (name.rsplit("/", 1)[-1], data, "image/png")) for name, data in images]


def _reference(served: Served, images: list[tuple[str, bytes]]) -> np.ndarray:
    """Probabilities of model.ts called directly on the images, decoded as a task's are."""
    cfg = ImageConfig(image_size=8, channels=1)
    x = torch.from_numpy(np.stack([decode_image(d, n, cfg) for n, d in images])).float() / 255
    with torch.no_grad():
        probs: np.ndarray = torch.softmax(served.model_ts()(x), dim=1).numpy()
    return probs


def _rgb_jpeg(size: int = 20) -> bytes:
    """A colour JPEG of another size than the model's (converted and resized on the way in)."""
    rng = np.random.default_rng(7)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def test_a_search_jobs_model_answers_like_its_model_ts(served: Served) -> None:
    model = served.alice.get(f"/v1/models/{served.model}").json()
    meta = json.loads((served.settings.artifacts_dir / served.search / "model.json").read_text())
    assert model["status"] == "ready" and model["job"] == served.search
    assert model["replicas"] == 2
    from ray import serve

    app = serve.status().applications[app_name(served.model)]
    assert app.status == "RUNNING"
    states = [
        {getattr(k, "value", k): n for k, n in d.replica_states.items()}
        for d in app.deployments.values()
    ]
    assert states == [{"RUNNING": 2}]
    replica = serve.get_app_handle(app_name(served.model)).describe.remote().result()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    assert replica == {"device": device, "torch_threads": 1, "switch_interval_s": 0.002}
    assert model["classes"] == meta["classes"] == ["c0", "c1", "c2"]
    assert model["input"] == {"channels": 1, "height": 8, "width": 8}
    assert [m["id"] for m in served.alice.get("/v1/models").json()] == [served.model]

    images = [*served.query, ("photo.jpg", _rgb_jpeg())]
    resp = served.alice.post(f"/v1/models/{served.model}/predict", files=_files(images))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["model"] == served.model and len(body["predictions"]) == len(images)
    expected = _reference(served, images)
    for pred, probs in zip(body["predictions"], expected, strict=True):
        assert list(pred["probabilities"]) == model["classes"]
        got = np.array(list(pred["probabilities"].values()))
        np.testing.assert_allclose(got, probs, atol=1e-5)
        assert pred["label"] == model["classes"][int(probs.argmax())]
        assert pred["probability"] == pytest.approx(float(probs.max()), abs=1e-5)

    # The same images as base64 JSON get the same answer.
    encoded = [base64.b64encode(d).decode() for _, d in images]
    again = served.alice.post(f"/v1/models/{served.model}/predict", json={"images": encoded})
    assert again.status_code == 200, again.text
    assert [p["label"] for p in again.json()["predictions"]] == [
        p["label"] for p in body["predictions"]
    ]


def test_concurrent_requests_are_batched_and_each_gets_its_own_answer(served: Served) -> None:
    from concurrent.futures import ThreadPoolExecutor

    expected = _reference(served, served.query).argmax(1)

    def one(i: int) -> str:
        name, data = served.query[i % len(served.query)]
        resp = served.alice.post(f"/v1/models/{served.model}/predict", files=_files([(name, data)]))
        assert resp.status_code == 200, resp.text
        return str(resp.json()["predictions"][0]["label"])

    with ThreadPoolExecutor(8) as pool:
        labels = list(pool.map(one, range(24)))
    classes = ["c0", "c1", "c2"]
    assert labels == [classes[expected[i % len(served.query)]] for i in range(24)]


def test_deploying_what_is_not_a_served_search_is_refused_with_a_reason(served: Served) -> None:
    unknown = served.alice.post("/v1/models", json={"job": "0" * 32})
    assert unknown.status_code == 404 and "no job" in unknown.json()["detail"]
    other = served.bob.post("/v1/models", json={"job": served.search})
    assert other.status_code == 404  # another tenant's job does not exist for bob
    meta = served.alice.post("/v1/models", json={"job": served.meta_train})
    assert meta.status_code == 422 and "meta_train" in meta.json()["detail"]
    jobs = JobStore(served.redis, Keys(served.settings.key_prefix))
    queued, _ = jobs.create(
        JobKind.search, SearchSpec(supernet=served.meta_train, dataset="d" * 32), tenant="alice"
    )
    busy = served.alice.post("/v1/models", json={"job": queued.id})
    assert busy.status_code == 409 and "queued" in busy.json()["detail"]
    replicas = served.alice.post("/v1/models", json={"job": served.search, "replicas": 0})
    assert replicas.status_code == 422
    assert served.alice.post("/v1/models", content=b"{").status_code == 422
    maybe = served.alice.post("/v1/models?wait=maybe", json={"job": served.search})
    assert maybe.status_code == 422 and "wait" in maybe.text
    assert [m["id"] for m in served.alice.get("/v1/models").json()] == [served.model]


def test_bad_images_get_a_4xx_that_names_them(served: Served) -> None:
    url = f"/v1/models/{served.model}/predict"
    text = served.alice.post(url, files=[("files", ("notes.txt", b"hello", "text/plain"))])
    assert text.status_code == 422 and "notes.txt" in text.json()["detail"]
    cut = served.query[0][1][:20]  # a PNG header and nothing else
    broken = served.alice.post(url, files=[("files", ("cut.png", cut, "image/png"))])
    assert broken.status_code == 422 and "cut.png" in broken.json()["detail"]
    b64 = served.alice.post(url, json={"images": ["not base64!"]})
    assert b64.status_code == 422 and "image 0" in b64.json()["detail"]
    assert served.alice.post(url, json={"images": []}).status_code == 422
    assert served.alice.post(url, json={"pictures": ["x"]}).status_code == 422
    many = served.alice.post(url, files=_files(served.query[:1] * (MAX_IMAGES + 1)))
    assert many.status_code == 413 and str(MAX_IMAGES) in many.json()["detail"]
    plain = served.alice.post(url, content=b"raw", headers={"content-type": "image/png"})
    assert plain.status_code == 422 and "multipart" in plain.json()["detail"]


def test_another_tenants_model_does_not_exist(served: Served) -> None:
    path = f"/v1/models/{served.model}"
    assert served.bob.get(path).status_code == 404
    assert served.bob.post(f"{path}/predict", files=_files(served.query[:1])).status_code == 404
    assert served.bob.delete(path).status_code == 404
    assert served.bob.get("/v1/models").json() == []
    assert httpx.get(served.url + path).status_code == 401
    assert served.alice.get(path).status_code == 200  # still there


def test_a_lost_model_is_redeployed_by_the_next_api_and_delete_takes_it_down(
    served: Served,
) -> None:
    created = served.alice.post("/v1/models", params={"wait": True}, json={"job": served.search})
    assert created.status_code == 201, created.text
    model = created.json()["id"]
    from ray import serve

    serve.delete(app_name(model))  # as when the Ray cluster went down with the old API
    assert app_name(model) not in serve.status().applications

    # A restarted API (same Redis, same data dir) redeploys it from its stored files.
    app = create_app(served.settings, served.redis, RayServeRuntime(served.settings))
    app.state.model_restore.join(timeout=60)
    with live(app) as url, httpx.Client(base_url=url, timeout=60, headers=_auth(ALICE)) as c:
        assert c.get(f"/v1/models/{model}").json()["status"] == "ready"
        resp = c.post(f"/v1/models/{model}/predict", files=_files(served.query))
        assert resp.status_code == 200, resp.text
        labels = [p["label"] for p in resp.json()["predictions"]]
        assert labels == [["c0", "c1", "c2"][k] for k in _reference(served, served.query).argmax(1)]

        assert c.delete(f"/v1/models/{model}").status_code == 204
        assert app_name(model) not in serve.status().applications
        assert not (served.settings.models_dir / model).exists()
        assert c.get(f"/v1/models/{model}").status_code == 404
        gone = c.post(f"/v1/models/{model}/predict", files=_files(served.query))
        assert gone.status_code == 404
        assert c.delete(f"/v1/models/{model}").status_code == 404
    assert app_name(served.model) in serve.status().applications  # the other one stays up


def test_an_api_without_ray_says_models_are_not_served(server: LiveServer) -> None:
    unknown = server.http.post("/v1/models", json={"job": "0" * 32})
    assert unknown.status_code == 404  # the request is checked first, then the runtime
    jobs = server.services.jobs
    job, _ = jobs.create(JobKind.search, SearchSpec(supernet="a" * 32, dataset="b" * 32))
    jobs.start(job.id, "a-worker")
    jobs.succeed(job.id, {})
    resp = server.http.post("/v1/models", json={"job": job.id})
    assert resp.status_code == 503 and "without Ray" in resp.json()["detail"]
    assert server.http.get("/v1/models").json() == []


def test_a_model_deploys_in_the_background_and_the_cli_and_client_drive_it(
    served: Served,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from api.client import AtnasClient
    from atnas_cli.main import main

    monkeypatch.setenv("ATNAS_API_KEY", ALICE)
    url = ["--url", served.url]
    # Without ?wait the POST answers at once: 202, deploying, and where to look.
    assert main(["models", "deploy", served.search, "--no-wait", "--json", *url]) == 0
    accepted = json.loads(capsys.readouterr().out)
    assert accepted["status"] == "deploying" and accepted["job"] == served.search
    model = accepted["id"]
    raw = served.alice.post("/v1/models", json={"job": served.search})
    assert raw.status_code == 202 and raw.json()["status"] == "deploying"
    assert raw.headers["location"] == f"/v1/models/{raw.json()['id']}"
    with AtnasClient(served.url, api_key=ALICE) as client:
        assert client.wait_model(raw.json()["id"], timeout=60).status.value == "ready"
        client.delete_model(raw.json()["id"])
        assert client.wait_model(model, timeout=60).status.value == "ready"
        assert model in {m.id for m in client.models()}

    paths = []
    for i, (name, data) in enumerate(served.query):  # query/<class>/<n>.png: names repeat
        path = tmp_path / f"{i}-{name.rsplit('/', 1)[-1]}"
        path.write_bytes(data)
        paths.append(str(path))
    assert main(["models", "predict", model, *paths, *url]) == 0
    printed = [row.split() for row in capsys.readouterr().out.splitlines()]
    expected = _reference(served, served.query).argmax(1)
    assert [row[1] for row in printed] == [["c0", "c1", "c2"][k] for k in expected]
    assert [row[0] for row in printed] == paths

    assert main(["models", "list", *url]) == 0
    assert model in capsys.readouterr().out
    assert main(["models", "delete", model, *url]) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as gone:
        main(["models", "show", model, *url])
    assert gone.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("atnas: error: HTTP 404") and "\n" not in err
    with pytest.raises(SystemExit):
        main(["models", "predict", served.model, str(tmp_path / "missing.png"), *url])
    assert "missing.png: no such file" in capsys.readouterr().err
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(SystemExit) as empty:
        main(["models", "predict", served.model, str(tmp_path / "empty.png"), *url])
    assert empty.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("atnas: error: HTTP 422") and "empty file" in err and "\n" not in err
