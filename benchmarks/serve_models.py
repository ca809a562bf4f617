"""Benchmark of served models (issue 9): predictions/s and latency at 16 concurrent clients.

Starts ``atnas serve`` (embedded Redis, local Ray) in a subprocess, meta-trains and searches a 5-way
5-shot Omniglot task through the REST API (short budgets: the model's accuracy does not matter here,
its size does: the default preset at 28 pixels, whose net the JSON names under ``model``),
deploys the search job's model with ``POST /v1/models`` and then measures, on the task's 25
query images (105 x 105 PNGs):

1. served: 16 clients, each a keep-alive HTTP connection sending one image per
   ``POST /v1/models/{id}/predict`` (multipart) as soon as its previous answer came back;
2. baseline: the same 16 clients calling model.ts directly in this process, with a fresh
   ``torch.jit.load`` per request (decode, load, forward, softmax; one torch thread each);
   no HTTP at all, which favours the baseline;
3. reference: the same, with model.ts loaded once (the floor of any server);
4. naive server: the same 16 HTTP clients against the server a user would write without
   ``POST /v1/models`` (``benchmarks/naive_model_server.py``: FastAPI, a fresh
   ``torch.jit.load`` per request), started alone after the service has stopped.

The issue's target compares served with a fresh ``torch.jit.load`` per request; both readings
are reported: against the direct calls (2, no HTTP) and against the naive server (4).

Every phase sends the same images in the same order, runs ``--seconds`` after a 2 s warm-up,
and the served labels are checked against the baseline's.

    python benchmarks/serve_models.py               # ~3 minutes on 2 cores
Writes benchmarks/out/serve_models.json and prints a summary.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import platform
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from atnas.data import ImageConfig, decode_image
from atnas_cli.demo import groups_zip, task_zip

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.serving import Server, omniglot, wait  # noqa: E402

TRAIN = ["Latin", "Greek", "Futurama", "Gujarati", "Malay_(Jawi_-_Arabic)"]
CLIENTS = 16
BOUNDARY = "atnasbenchboundary"


def multipart(name: str, data: bytes) -> bytes:
    """A multipart/form-data body with one file in field ``files``."""
    return (
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
            f"Content-Type: image/png\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


class Conn:
    """A bare keep-alive HTTP/1.1 connection (a full client library spends more CPU per
    request than the server it measures on 2 shared cores; see benchmarks/serving.py)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Length: {len(body)}\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.split(b"\r\n")
        length = next(
            int(v)
            for k, _, v in (ln.partition(b":") for ln in lines[1:])
            if k.lower() == b"content-length"
        )
        return int(lines[0].split()[1]), await self.reader.readexactly(length)


def summary(latencies: list[float], seconds: float) -> dict[str, Any]:
    lat = sorted(latencies)
    return {
        "requests": len(lat),
        "predictions_per_second": len(lat) / seconds,
        "p50_ms": 1000 * lat[len(lat) // 2],
        "p99_ms": 1000 * lat[int(len(lat) * 0.99)],
        "max_ms": 1000 * lat[-1],
    }


async def _served_load(
    url: str, model: str, images: list[tuple[str, bytes]], seconds: float
) -> tuple[dict[str, Any], dict[int, str]]:
    host, port = url.removeprefix("http://").split(":")
    conns = [Conn(*await asyncio.open_connection(host, int(port))) for _ in range(CLIENTS)]
    bodies = [multipart(n.rsplit("/", 1)[-1], d) for n, d in images]
    path = f"/v1/models/{model}/predict"
    labels: dict[int, str] = {}
    lat: list[float] = []

    async def client(k: int, c: Conn, until: float, record: bool) -> None:
        i = k
        while time.perf_counter() < until:
            j = i % len(bodies)
            t = time.perf_counter()
            status, out = await c.post(path, bodies[j])
            if status != 200:
                raise SystemExit(f"predict answered {status}: {out[:300]!r}")
            if record:
                lat.append(time.perf_counter() - t)
                labels[j] = json.loads(out)["predictions"][0]["label"]
            i += CLIENTS

    warm = time.perf_counter() + 2
    await asyncio.gather(*(client(k, c, warm, False) for k, c in enumerate(conns)))
    t0 = time.perf_counter()
    end = t0 + seconds
    await asyncio.gather(*(client(k, c, end, True) for k, c in enumerate(conns)))
    elapsed = time.perf_counter() - t0
    for c in conns:
        c.writer.close()
    return summary(lat, elapsed), labels


def _direct_load(
    predict: Callable[[bytes, str], int], images: list[tuple[str, bytes]], seconds: float
) -> tuple[dict[str, Any], dict[int, int]]:
    """16 threads calling ``predict`` back to back on the images (same order as served)."""
    lat: list[float] = []
    labels: dict[int, int] = {}
    lock = threading.Lock()

    def client(k: int, until: float, record: bool) -> None:
        i = k
        while time.perf_counter() < until:
            j = i % len(images)
            t = time.perf_counter()
            label = predict(images[j][1], images[j][0])
            if record:
                with lock:
                    lat.append(time.perf_counter() - t)
                    labels[j] = label
            i += CLIENTS

    def run(until: float, record: bool) -> None:
        threads = [threading.Thread(target=client, args=(k, until, record)) for k in range(CLIENTS)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()

    run(time.perf_counter() + 2, False)
    t0 = time.perf_counter()
    run(t0 + seconds, True)
    return summary(lat, time.perf_counter() - t0), labels


def _naive_server_load(
    model_ts: Path, model: dict[str, Any], images: list[tuple[str, bytes]], seconds: float
) -> tuple[dict[str, Any], dict[int, str]]:
    """Starts benchmarks/naive_model_server.py, drives it like the served model, stops it."""
    import socket
    import subprocess

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, str(ROOT / "benchmarks" / "naive_model_server.py")]
    cmd += ["--model", str(model_ts), "--classes", ",".join(model["classes"])]
    cmd += ["--size", str(model["input"]["height"]), "--channels", str(model["input"]["channels"])]
    cmd += ["--port", str(port)]
    proc = subprocess.Popen(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit("the naive model server did not start") from None
                time.sleep(0.2)
        return asyncio.run(_served_load(f"http://127.0.0.1:{port}", "naive", images, seconds))
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> int:
    import argparse

    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seconds", type=float, default=15.0, help="measured load per phase")
    ap.add_argument("--train-seconds", type=float, default=20.0, help="meta-training budget")
    ap.add_argument("--search-seconds", type=float, default=15.0, help="search budget")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "serve_models.json")
    args = ap.parse_args()
    if not omniglot().is_file():
        print(f"bench: error: {omniglot()} not found (set ATNAS_DATASETS)", file=sys.stderr)
        return 2
    torch.set_num_threads(1)  # as a replica: one torch thread per caller
    report: dict[str, Any] = {
        "date": dt.date.today().isoformat(),
        "command": "python " + " ".join(sys.argv),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "clients": CLIENTS,
        "images_per_request": 1,
    }
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        (work / "svc").mkdir()
        server = Server(work / "svc")
        try:
            c = server.client
            (work / "train.zip").write_bytes(groups_zip(omniglot(), TRAIN))
            (work / "task.zip").write_bytes(task_zip(omniglot(), "Tifinagh", 5, 5, 5, seed=0))
            train = c.upload_dataset(work / "train.zip")
            task = c.upload_dataset(work / "task.zip")
            mt = c.submit(
                "meta_train",
                {"datasets": [train.id], "way": 5, "budget_seconds": args.train_seconds},
            )
            wait(c, mt.id)
            sj = c.submit(
                "search",
                {"supernet": mt.id, "dataset": task.id, "budget_seconds": args.search_seconds},
            )
            result = wait(c, sj.id).result or {}
            # which net is served: its size sets the forward pass the server must pay for
            keys = ("architecture", "macs", "params", "model")
            report["model"] = {k: result.get(k) for k in keys}
            c.download(sj.id, "model.ts", work / "model.ts")
            import httpx

            t = time.perf_counter()
            resp = httpx.post(f"{server.url}/v1/models?wait=true", json={"job": sj.id}, timeout=120)
            if resp.status_code != 201:
                raise SystemExit(f"POST /v1/models answered {resp.status_code}: {resp.text}")
            model = resp.json()
            report["deploy_seconds"] = time.perf_counter() - t
            with zipfile.ZipFile(work / "task.zip") as z:
                images = [(n, z.read(n)) for n in sorted(z.namelist()) if n.startswith("query/")]
            served, served_labels = asyncio.run(
                _served_load(server.url, model["id"], images, args.seconds)
            )
            report["served"] = served
            print("served", json.dumps(served), flush=True)
        finally:
            server.stop()

        classes: list[str] = model["classes"]
        size = model["input"]["height"]
        naive, naive_labels = _naive_server_load(work / "model.ts", model, images, args.seconds)
        report["naive_http_fresh_load"] = naive
        print("naive http", json.dumps(naive), flush=True)
        cfg = ImageConfig(image_size=size, channels=model["input"]["channels"])
        path = str(work / "model.ts")

        def forward(net: Any, data: bytes, name: str) -> int:
            x = torch.from_numpy(decode_image(data, name, cfg)[None]).float().div_(255.0)
            with torch.inference_mode():
                return int(torch.softmax(net(x), dim=1).argmax(1).item())

        def fresh(data: bytes, name: str) -> int:
            return forward(torch.jit.load(path), data, name)  # type: ignore[no-untyped-call]

        loaded = torch.jit.load(path).eval()  # type: ignore[no-untyped-call]
        baseline, base_labels = _direct_load(fresh, images, args.seconds)
        report["baseline_fresh_load"] = baseline
        print("baseline", json.dumps(baseline), flush=True)
        reference, _ = _direct_load(lambda d, n: forward(loaded, d, n), images, args.seconds)
        report["reference_loaded_once"] = reference
        print("reference", json.dumps(reference), flush=True)

    mismatched = [j for j, lab in served_labels.items() if classes[base_labels[j]] != lab]
    report["labels_match"] = not mismatched
    report["speedup"] = served["predictions_per_second"] / baseline["predictions_per_second"]
    report["naive_labels_match"] = naive_labels == served_labels
    report["speedup_vs_naive_http"] = (
        served["predictions_per_second"] / naive["predictions_per_second"]
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(
        f"served: {served['predictions_per_second']:.0f} predictions/s, p50 "
        f"{served['p50_ms']:.1f} ms, p99 {served['p99_ms']:.1f} ms ({CLIENTS} clients)\n"
        f"baseline (fresh torch.jit.load per request): "
        f"{baseline['predictions_per_second']:.0f}/s, p99 {baseline['p99_ms']:.1f} ms\n"
        f"reference (model.ts loaded once, no HTTP): "
        f"{reference['predictions_per_second']:.0f}/s, p99 {reference['p99_ms']:.1f} ms\n"
        f"naive HTTP server (fresh torch.jit.load per request): "
        f"{naive['predictions_per_second']:.0f}/s, p99 {naive['p99_ms']:.1f} ms\n"
        f"speedup {report['speedup']:.1f}x vs direct fresh loads, "
        f"{report['speedup_vs_naive_http']:.1f}x vs the naive server (target >= 5x); "
        f"p99 target <= 50 ms; "
        f"labels match the baseline: {report['labels_match']}; "
        f"deploy took {report['deploy_seconds']:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
