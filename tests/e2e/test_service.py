"""End to end over real HTTP: `atnas serve` as a subprocess, real Ray, real Redis (both kinds).

Upload → meta-train (small budget) → search → poll → download model.ts → classify the task's
query images with ``torch.jit.load`` and check the accuracy the service reported.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import onnxruntime as ort
import pytest
import redis
import torch

from api.client import ApiError, AtnasClient
from atnas.data import ImageConfig, load_task
from atnas.limits import cheapest
from atnas.presets import get_preset
from atnas.tasks import to_float
from atnas_cli.demo import groups_zip, task_zip
from tests.ports import free_port

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
TRAIN_ALPHABETS = ["Latin", "Greek", "Futurama", "Gujarati"]


def _omniglot() -> Path:
    base = os.environ.get("ATNAS_DATASETS")
    root = Path(base) if base else REPO.parent / "shared" / "datasets"
    path = root / "omniglot" / "images_background.zip"
    if not path.is_file():
        pytest.skip(f"Omniglot not found at {path} (set ATNAS_DATASETS)")
    return path


@pytest.fixture(scope="module", params=["embedded", "server"])
def service(
    request: pytest.FixtureRequest, ray_address: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AtnasClient]:
    """A running `atnas serve` on a free port, joined to the session's Ray cluster."""
    data_dir = tmp_path_factory.mktemp(f"svc-{request.param}")
    prefix = f"atnas-e2e-{uuid.uuid4().hex[:8]}"
    port = free_port()
    env = {
        **os.environ,
        "ATNAS_DATA_DIR": str(data_dir),
        "ATNAS_PORT": str(port),
        "ATNAS_KEY_PREFIX": prefix,
        "ATNAS_RAY_ADDRESS": ray_address,
        "ATNAS_HEARTBEAT_TTL_S": "5",
    }
    env.pop("ATNAS_REDIS_URL", None)
    if request.param == "server":
        try:
            redis.Redis.from_url("redis://127.0.0.1:6379/0").ping()
        except redis.ConnectionError:
            pytest.skip("no Redis server at 127.0.0.1:6379")
        env["ATNAS_REDIS_URL"] = "redis://127.0.0.1:6379/0"
    log = open(data_dir / "serve.log", "wb")  # noqa: SIM115 (closed in teardown)
    proc = subprocess.Popen(
        [sys.executable, "-m", "atnas_cli.main", "serve", "--max-jobs", "2"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=data_dir,
    )
    client = AtnasClient(f"http://127.0.0.1:{port}", timeout=60)
    deadline = time.monotonic() + 180
    while True:
        if proc.poll() is not None:
            raise AssertionError((data_dir / "serve.log").read_text()[-3000:])
        try:
            client.ready()
            break
        except Exception:
            if time.monotonic() > deadline:
                raise AssertionError(
                    "service not ready: " + (data_dir / "serve.log").read_text()[-3000:]
                ) from None
            time.sleep(0.5)
    yield client
    client.close()
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()
    if request.param == "server":
        r = redis.Redis.from_url("redis://127.0.0.1:6379/0")
        keys = list(r.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            r.delete(*keys)


def _wait(client: AtnasClient, job_id: str, timeout: float = 300) -> tuple[object, list[object]]:
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.job(job_id)
        if job.progress is not None:
            seen.append((job.progress.phase, job.progress.step))
        if job.status.value in ("succeeded", "failed", "cancelled"):
            return job, seen
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not finish: {client.job(job_id)}")


@dataclass
class Trained:
    """A meta-trained supernet on the service and a task dataset to search."""

    supernet: str
    task: str
    task_path: Path


@pytest.fixture(scope="module")
def trained(service: AtnasClient, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """Upload → meta-train (tiny preset, 15 s) → a supernet; shared by the search tests."""
    tmp_path = tmp_path_factory.mktemp("trained")
    omniglot = _omniglot()
    train_zip = tmp_path / "train.zip"
    train_zip.write_bytes(groups_zip(omniglot, TRAIN_ALPHABETS))
    ds = service.upload_dataset(train_zip)
    assert set(ds.groups) == set(TRAIN_ALPHABETS)  # images_background/ is a wrapper, not a group
    task_path = tmp_path / "task.zip"
    task_path.write_bytes(task_zip(omniglot, "Tifinagh", 5, 5, 10, seed=1))
    task = service.upload_dataset(task_path)
    assert task.kind == "task" and len(task.classes) == 5

    mt = service.submit(
        "meta_train",
        {
            "datasets": [ds.id],
            "preset": "tiny",
            "way": 5,
            "shot": 5,
            "query": 5,
            "budget_seconds": 15,
        },
    )
    job, seen = _wait(service, mt.id)
    assert job.status.value == "succeeded", job.error
    assert any(phase == "meta_train" and step > 0 for phase, step in seen)
    assert mt.id in [s.id for s in service.supernets()]
    names = {a.name for a in service.artifacts(mt.id)}
    assert {"supernet.pt", "meta.json"} <= names
    return Trained(mt.id, task.id, task_path)


def test_upload_meta_train_search_download_classify(
    service: AtnasClient, trained: Trained, tmp_path: Path
) -> None:
    mt_id, task_path = trained.supernet, trained.task_path
    sj = service.submit(
        "search",
        {
            "supernet": mt_id,
            "dataset": trained.task,
            "budget_seconds": 20,
            "population": 4,
            "generations": 2,
            "seed": 3,
        },
    )
    job, seen = _wait(service, sj.id)
    assert job.status.value == "succeeded", job.error
    assert any(phase == "search" for phase, _ in seen)
    result = job.result
    assert result is not None
    infos = {a.name: a for a in service.artifacts(sj.id)}
    assert {"model.ts", "model.onnx", "model.json", "arch.json", "metrics.json"} <= set(infos)
    assert "README.md" in infos  # the model card
    out = tmp_path / "model.ts"
    service.download(sj.id, "model.ts", out)
    assert hashlib.sha256(out.read_bytes()).hexdigest() == infos["model.ts"].sha256
    meta = json.loads(service.download(sj.id, "model.json", tmp_path / "model.json").read_text())

    model = torch.jit.load(str(out))
    t = load_task(task_path, ImageConfig(meta["input"]["height"], meta["input"]["channels"]))
    assert t.query is not None and meta["classes"] == t.support.names
    x = to_float(t.query.images)
    y = torch.zeros(len(x), dtype=torch.long)
    for label, rows in enumerate(t.query.class_index):
        y[torch.from_numpy(rows)] = label
    with torch.no_grad():
        acc = (model(x).argmax(1) == y).float().mean().item()
    assert acc == pytest.approx(result["query_acc"], abs=1e-6)
    # The ONNX model gives the same classes on the same images.
    onnx_path = service.download(sj.id, "model.onnx", tmp_path / "model.onnx")
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    onnx_logits = session.run(["logits"], {"images": x.numpy()})[0]
    with torch.no_grad():
        ts_logits = model(x).numpy()
    assert (onnx_logits.argmax(1) == ts_logits.argmax(1)).all()
    assert abs(onnx_logits - ts_logits).max() <= 1e-4
    assert acc > 0.2  # better than chance on 5 classes the supernet never saw


def test_search_within_a_mac_bound_returns_its_front(
    service: AtnasClient, trained: Trained, tmp_path: Path
) -> None:
    low = cheapest(get_preset("tiny").space, 28, 5)
    with pytest.raises(ApiError) as err:
        service.search(trained.supernet, trained.task, max_macs=low.macs - 1)
    assert err.value.status == 422
    assert err.value.detail == (
        f"spec.constraints.max_macs: {low.macs - 1} cannot be met; the smallest net of this "
        f"supernet's space costs {low.macs} MACs for 5 classes"
    )
    limit = 500_000  # the tiny preset's nets cost 46k (cheapest) to 2.7M MACs (Conv-4 at width 32)
    sj = service.search(
        trained.supernet,
        trained.task,
        max_macs=limit,
        budget_seconds=20,
        population=4,
        generations=2,
        seed=3,
    )
    job, _ = _wait(service, sj.id)
    assert job.status.value == "succeeded", job.error
    result = job.result
    assert result is not None and result["macs"] <= limit
    assert job.progress is not None and job.progress.best_fitness == result["fitness"]
    assert "front.json" in {a.name for a in service.artifacts(sj.id)}
    front = json.loads(service.download(sj.id, "front.json", tmp_path).read_text())
    points = front["front"] if isinstance(front, dict) else front
    assert points and all(p["macs"] <= limit for p in points)
    assert result["front"] == points


def test_cancel_a_running_meta_train(service: AtnasClient, tmp_path: Path) -> None:
    train_zip = tmp_path / "train.zip"
    train_zip.write_bytes(groups_zip(_omniglot(), TRAIN_ALPHABETS[:2]))
    ds = service.upload_dataset(train_zip)
    mt = service.submit(
        "meta_train", {"datasets": [ds.id], "preset": "tiny", "way": 5, "budget_seconds": 600}
    )
    deadline = time.monotonic() + 120
    while service.job(mt.id).status.value != "running":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    service.cancel(mt.id)
    job, _ = _wait(service, mt.id, timeout=120)
    assert job.status.value == "cancelled"
