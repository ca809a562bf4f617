"""Benchmark of the service (issue 3). A script, not a test.

1. Overhead: the same search through the service (POST → succeeded) vs a direct library call
   (``atnas.pipeline.search_task`` on the same supernet, task and settings), after start-up.
2. Parallelism: one generation's evaluation on 2 evaluator actors vs 1.
3. API: ``POST /v1/jobs`` accepted per second and ``GET /v1/jobs/{id}`` p50/p99 latency with
   32 concurrent clients (API only, no worker, embedded Redis).

    python benchmarks/serving.py            # ~5 minutes on 2 cores (named so: a script called
                                            # service.py would shadow the service package)
Writes benchmarks/out/service.json and prints a Markdown summary for docs/benchmarks.md.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from atnas_cli.demo import groups_zip

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ["Latin", "Greek", "Futurama", "Gujarati", "Malay_(Jawi_-_Arabic)"]


def omniglot() -> Path:
    base = Path(os.environ.get("ATNAS_DATASETS", ROOT.parent / "shared" / "datasets"))
    return base / "omniglot" / "images_background.zip"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """`atnas serve` in a subprocess with its own data dir."""

    def __init__(self, data_dir: Path, *extra: str) -> None:
        self.port = free_port()
        self.log = open(data_dir / "serve.log", "wb")  # noqa: SIM115
        env = {**os.environ, "ATNAS_DATA_DIR": str(data_dir), "ATNAS_PORT": str(self.port)}
        env.pop("ATNAS_REDIS_URL", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "atnas_cli.main", "serve", *extra],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        from api.client import AtnasClient

        self.client = AtnasClient(self.url, timeout=120)
        deadline = time.monotonic() + 180
        path = "/readyz" if "--no-worker" not in extra else "/healthz"
        while True:
            try:
                if httpx.get(self.url + path, timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise SystemExit(f"server did not start; see {data_dir / 'serve.log'}")
            time.sleep(0.5)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def wait(client: Any, job_id: str) -> Any:
    while True:
        job = client.job(job_id)
        if job.status.value in ("succeeded", "failed", "cancelled"):
            if job.status.value != "succeeded":
                raise SystemExit(f"job {job_id} {job.status.value}: {job.error}")
            return job
        time.sleep(0.1)


def bench_overhead_and_parallelism(work: Path, repeats: int) -> dict[str, Any]:
    from atnas import pipeline
    from atnas.data import load_task
    from atnas.metatrain import MetaState
    from atnas_cli.demo import task_zip
    from service.schemas import SearchSpec
    from workers.specs import search_config

    src = omniglot()
    (work / "train.zip").write_bytes(groups_zip(src, TRAIN))
    (work / "task.zip").write_bytes(task_zip(src, "Tifinagh", 5, 5, 15, seed=0))
    server = Server(work / "svc")
    out: dict[str, Any] = {}
    try:
        c = server.client
        ds = c.upload_dataset(work / "train.zip")
        task = c.upload_dataset(work / "task.zip")
        mt = wait(
            c,
            c.submit(
                "meta_train",
                {"datasets": [ds.id], "way": 5, "shot": 5, "query": 5, "budget_seconds": 60},
            ).id,
        )
        spec = {"supernet": mt.id, "dataset": task.id, "budget_seconds": 600, "seed": 0}
        wait(c, c.submit("search", spec).id)  # warm-up: actors start, supernet loads
        service_s = []
        for i in range(repeats):
            t0 = time.perf_counter()
            wait(c, c.submit("search", {**spec, "seed": i}).id)
            service_s.append(time.perf_counter() - t0)
        c.download(mt.id, "supernet.pt", work / "supernet.pt")
    finally:
        server.stop()
    # The same searches through the library, in this process (1 evaluator: this process).
    state, _ = MetaState.load(work / "supernet.pt")
    t = load_task(work / "task.zip", pipeline.task_image_config(state))
    direct_s = []
    for i in range(repeats):
        cfg = search_config(SearchSpec(supernet="x", dataset="y", budget_seconds=600, seed=i))
        t0 = time.perf_counter()
        pipeline.search_task(state, t, cfg)
        direct_s.append(time.perf_counter() - t0)
    out["overhead"] = {
        "service_seconds": service_s,
        "direct_seconds": direct_s,
        "ratio_median": statistics.median(service_s) / statistics.median(direct_s),
    }
    out["parallelism"] = bench_parallelism(state, t)
    return out


def bench_parallelism(state: Any, task: Any) -> dict[str, Any]:
    import ray

    from atnas.evolution import random_encode
    from atnas.fitness import support_splits
    from atnas.learner import InnerConfig
    from atnas.pipeline import task_tensors
    from workers.evaluators import EvaluatorPool
    from workers.holder import to_blob

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        x, y, n = task_tensors(task)
        splits = support_splits(x, y, n, folds=1)
        rng = np.random.default_rng(0)
        encodes = [random_encode(state.space, rng) for _ in range(16)]
        ref = ray.put(to_blob(state))
        pool = EvaluatorPool(2)
        times: dict[int, list[float]] = {1: [], 2: []}
        inner = InnerConfig(5, 0.1)
        for actors in (1, 2):
            ev = pool.evaluator("s", ref, splits, n, inner, actors=actors)
            ev(encodes[:2])  # warm: supernet and task cached on the actors
        for _ in range(3):
            for actors in (1, 2):
                ev = pool.evaluator("s", ref, splits, n, inner, actors=actors)
                t0 = time.perf_counter()
                ev(encodes)
                times[actors].append(time.perf_counter() - t0)
        pool.shutdown()
    finally:
        ray.shutdown()
    return {
        "candidates": 16,
        "one_actor_seconds": times[1],
        "two_actor_seconds": times[2],
        "ratio_median": statistics.median(times[2]) / statistics.median(times[1]),
    }


class RawHTTP:
    """A bare keep-alive HTTP/1.1 connection: the load generator shares the machine's 2 cores
    with the server, and a full client library (httpx) spent more CPU per request than the
    server it was measuring, so its own queueing dominated the latencies."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, host: str, port: int) -> RawHTTP:
        return cls(*await asyncio.open_connection(host, port))

    async def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        head = f"{method} {path} HTTP/1.1\r\nHost: bench\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + (body or b""))
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.split(b"\r\n")
        status = int(lines[0].split()[1])
        length = next(
            int(v)
            for k, _, v in (ln.partition(b":") for ln in lines[1:])
            if k.lower() == b"content-length"
        )
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


async def _api_load(url: str, dataset: str, clients: int, seconds: float) -> dict[str, Any]:
    body = json.dumps(
        {"kind": "meta_train", "spec": {"datasets": [dataset], "way": 2, "shot": 1}}
    ).encode()
    host, port = url.removeprefix("http://").split(":")
    conns = [await RawHTTP.open(host, int(port)) for _ in range(clients)]
    ids: list[str] = []
    posted = 0

    async def post_loop(c: RawHTTP) -> None:
        nonlocal posted
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            status, out = await c.request("POST", "/v1/jobs", body)
            assert status == 202, out
            ids.append(json.loads(out)["id"])
            posted += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(post_loop(c) for c in conns))
    post_rate = posted / (time.perf_counter() - t0)
    lat: list[float] = []

    async def get_loop(k: int, c: RawHTTP) -> None:
        end = time.perf_counter() + seconds
        i = k
        while time.perf_counter() < end:
            t = time.perf_counter()
            status, out = await c.request("GET", f"/v1/jobs/{ids[i % len(ids)]}")
            lat.append(time.perf_counter() - t)
            assert status == 200, out
            i += clients

    t0 = time.perf_counter()
    await asyncio.gather(*(get_loop(k, c) for k, c in enumerate(conns)))
    get_rate = len(lat) / (time.perf_counter() - t0)
    for c in conns:
        c.close()
    lat.sort()
    return {
        "clients": clients,
        "client": "raw keep-alive HTTP/1.1 over asyncio streams",
        "posts": posted,
        "post_per_second": post_rate,
        "gets": len(lat),
        "get_per_second": get_rate,
        "get_p50_ms": 1000 * lat[len(lat) // 2],
        "get_p95_ms": 1000 * lat[int(len(lat) * 0.95)],
        "get_p99_ms": 1000 * lat[int(len(lat) * 0.99)],
        "get_max_ms": 1000 * lat[-1],
    }


def bench_api(work: Path, seconds: float) -> dict[str, Any]:
    server = Server(work / "api", "--no-worker")
    try:
        tiny = io.BytesIO()
        with zipfile.ZipFile(tiny, "w") as z, zipfile.ZipFile(omniglot()) as src:
            names = [n for n in src.namelist() if "/Latin/character0" in n and n.endswith(".png")]
            for n in names[:40]:
                z.writestr(n, src.read(n))
        (work / "tiny.zip").write_bytes(tiny.getvalue())
        ds = server.client.upload_dataset(work / "tiny.zip")
        return asyncio.run(_api_load(server.url, ds.id, 32, seconds))
    finally:
        server.stop()


def main() -> int:
    import argparse

    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--repeats", type=int, default=3, help="searches timed each way")
    ap.add_argument("--api-seconds", type=float, default=10.0, help="load duration per phase")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "service.json")
    ap.add_argument(
        "--parts",
        default="api,search",
        help="comma-separated: api (load test), search (overhead and parallelism)",
    )
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    if not parts or not parts <= {"api", "search"}:
        print(f"bench: error: --parts takes api and/or search, not {args.parts!r}", file=sys.stderr)
        return 2
    if not omniglot().is_file():
        print(f"bench: error: {omniglot()} not found (set ATNAS_DATASETS)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        (work / "svc").mkdir()
        (work / "api").mkdir()
        report: dict[str, Any] = {
            "date": dt.date.today().isoformat(),
            "command": "python " + " ".join(sys.argv),
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        }
        if "api" in parts:
            report["api"] = bench_api(work, args.api_seconds)
            print(json.dumps(report["api"]), flush=True)
        if "search" in parts:
            report.update(bench_overhead_and_parallelism(work, args.repeats))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    if "search" in parts:
        o, p = report["overhead"], report["parallelism"]
        print(f"overhead ratio (service/direct, median of {args.repeats}): {o['ratio_median']:.3f}")
        print(f"parallel ratio (2 actors / 1 actor, 16 candidates): {p['ratio_median']:.3f}")
    if "api" in parts:
        a = report["api"]
        print(
            f"POST /v1/jobs: {a['post_per_second']:.0f}/s; GET p50 {a['get_p50_ms']:.1f} ms, "
            f"p99 {a['get_p99_ms']:.1f} ms ({a['clients']} clients)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
