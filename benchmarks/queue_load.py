"""Load on the job queue: many clients, many jobs, a dispatcher killed mid-run; none lost or
run twice.

Everything is real except the work itself: ``atnas serve --no-worker`` (the API) in a
subprocess, the Redis server at 127.0.0.1:6379 (own key prefix), two dispatcher processes
(``workers.dispatcher.Dispatcher``, the one `atnas serve` runs) whose runners are a 20 ms
no-op that counts each run in Redis — so the queue, the job store and the take-over of a dead
worker are under test, not the model. ``--clients`` threads each submit ``--jobs`` jobs over
HTTP (every fifth is cancelled at once, every third carries an Idempotency-Key sent twice),
then poll them until terminal. After a third of the jobs, one dispatcher is SIGKILLed and a
new one started.

Checks: every job terminal; a succeeded job ran exactly once (a job taken over from the
killed dispatcher may have *started* twice — that is the at-least-once contract — but it
finishes once); a job cancelled while queued never ran; the stream and its pending list are
empty; no 5xx.

Run:  .venv/bin/python benchmarks/queue_load.py --clients 50 --jobs 20
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import redis

ROOT = Path(__file__).resolve().parents[1]
REDIS_URL = "redis://127.0.0.1:6379/0"
RUN_SECONDS = 0.02


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tiny_zip() -> bytes:
    """A class-folder dataset of 4 classes x 2 images (valid PNGs), enough for 2-way specs."""
    from PIL import Image

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for c in range(4):
            for i in range(2):
                img = io.BytesIO()
                Image.new("L", (8, 8), color=40 * c + i).save(img, "PNG")
                zf.writestr(f"G{c % 2}/c{c}/{i}.png", img.getvalue())
    return buf.getvalue()


# --- the dispatcher process --------------------------------------------------------------
def run_dispatcher(prefix: str, data_dir: Path, worker_id: str) -> None:
    """A real Dispatcher whose runners count their runs (``<prefix>:bench:runs``)."""
    sys.path.insert(0, str(ROOT))
    from service.schemas import JobKind
    from service.settings import Settings
    from workers.dispatcher import Dispatcher

    settings = Settings(
        data_dir=data_dir, key_prefix=prefix, redis_url=REDIS_URL, heartbeat_ttl_s=3.0
    )
    r = redis.Redis.from_url(REDIS_URL, decode_responses=True)

    def noop(ctx: Any, job: Any) -> dict[str, Any]:
        r.hincrby(f"{prefix}:bench:started", job.id, 1)
        time.sleep(RUN_SECONDS)
        r.hincrby(f"{prefix}:bench:runs", job.id, 1)
        return {"ran_on": worker_id}

    d = Dispatcher(
        settings,
        r,
        max_jobs=4,
        worker_id=worker_id,
        runners={JobKind.meta_train: noop, JobKind.search: noop},
    )
    d.start()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        time.sleep(1)


class Proc:
    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log.open("wb")
        self.proc = subprocess.Popen(
            args, env=env, stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT
        )

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


def _dispatcher(prefix: str, data: Path, name: str) -> Proc:
    return Proc(
        [sys.executable, __file__, "--dispatcher", prefix, str(data), name],
        {**os.environ},
        data / f"{name}.log",
    )


# --- the clients -------------------------------------------------------------------------
def client_loop(
    url: str, dataset: str, n: int, k: int, out: dict[str, Any], lock: threading.Lock
) -> None:
    mine: list[tuple[str, str]] = []  # (job id, what was done to it)
    statuses: Counter[int] = Counter()
    with httpx.Client(base_url=url, timeout=60) as http:
        for i in range(n):
            spec = {"kind": "meta_train", "spec": {"datasets": [dataset], "way": 2, "seed": i}}
            headers = {"Idempotency-Key": f"c{k}-j{i}"} if i % 3 == 0 else {}
            t0 = time.perf_counter()
            resp = http.post("/v1/jobs", json=spec, headers=headers)
            with lock:
                out["submit_s"].append(time.perf_counter() - t0)
            statuses[resp.status_code] += 1
            job_id = resp.json()["id"]
            if headers:  # the same request again: the same job, nothing new queued
                again = http.post("/v1/jobs", json=spec, headers=headers)
                statuses[again.status_code] += 1
                assert again.json()["id"] == job_id, "an Idempotency-Key made two jobs"
            action = "run"
            if i % 5 == 4:
                cancelled = http.post(f"/v1/jobs/{job_id}/cancel")
                statuses[cancelled.status_code] += 1
                action = "cancel"
            mine.append((job_id, action))
        final: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + 600
        while len(final) < len(mine) and time.monotonic() < deadline:
            for job_id, _ in mine:
                if job_id in final:
                    continue
                resp = http.get(f"/v1/jobs/{job_id}")
                statuses[resp.status_code] += 1
                if resp.json()["status"] in ("succeeded", "failed", "cancelled"):
                    final[job_id] = resp.json()
            time.sleep(0.2)
    with lock:
        out["jobs"].extend((job_id, action, final.get(job_id)) for job_id, action in mine)
        out["statuses"].update(statuses)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--jobs", type=int, default=20, help="jobs per client")
    ap.add_argument(
        "--dispatcher", nargs=3, metavar=("PREFIX", "DATA", "NAME"), help=argparse.SUPPRESS
    )
    args = ap.parse_args()
    if args.dispatcher:
        run_dispatcher(args.dispatcher[0], Path(args.dispatcher[1]), args.dispatcher[2])
        return 0

    r = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    r.ping()
    prefix = f"atnas-load-{uuid.uuid4().hex[:8]}"
    data = Path(tempfile.mkdtemp(prefix="atnas-load-"))
    port = _free_port()
    env = {
        **os.environ,
        "ATNAS_DATA_DIR": str(data),
        "ATNAS_PORT": str(port),
        "ATNAS_KEY_PREFIX": prefix,
        "ATNAS_REDIS_URL": REDIS_URL,
    }
    api = Proc(
        [sys.executable, "-m", "atnas_cli.main", "serve", "--no-worker"], env, data / "api.log"
    )
    url = f"http://127.0.0.1:{port}"
    procs = [api]
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{url}/healthz").raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise RuntimeError((data / "api.log").read_text()[-2000:]) from None
                time.sleep(0.2)
        dataset = httpx.post(
            f"{url}/v1/datasets", files={"file": ("d.zip", _tiny_zip(), "application/zip")}
        ).json()["id"]
        d1, d2 = _dispatcher(prefix, data, "d1"), _dispatcher(prefix, data, "d2")
        procs += [d1, d2]
        total = args.clients * args.jobs
        out: dict[str, Any] = {"jobs": [], "statuses": Counter(), "submit_s": []}
        lock = threading.Lock()
        threads = [
            threading.Thread(target=client_loop, args=(url, dataset, args.jobs, k, out, lock))
            for k in range(args.clients)
        ]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        # Kill one dispatcher once a third of the jobs have run, and start another.
        killed_at = None
        while any(t.is_alive() for t in threads):
            if killed_at is None and r.hlen(f"{prefix}:bench:runs") >= total // 3:
                d1.stop(signal.SIGKILL)
                killed_at = time.monotonic() - t0
                procs.append(_dispatcher(prefix, data, "d3"))
            time.sleep(0.1)
        for t in threads:
            t.join()
        seconds = time.monotonic() - t0
        runs = {k: int(v) for k, v in r.hgetall(f"{prefix}:bench:runs").items()}
        started = {k: int(v) for k, v in r.hgetall(f"{prefix}:bench:started").items()}
        stream = f"{prefix}:queue"
        pending = int(r.xpending(stream, "workers")["pending"])
        left = int(r.xlen(stream))
    finally:
        for p in procs:
            p.stop()
        keys = list(r.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            r.delete(*keys)

    jobs = out["jobs"]
    final_status = Counter(f["status"] if f else "not terminal" for _, _, f in jobs)
    lost = sum(1 for _, _, f in jobs if f is None)
    succeeded = [j for j, _, f in jobs if f and f["status"] == "succeeded"]
    duplicated = sum(1 for j in succeeded if runs.get(j, 0) != 1)
    restarted = sum(1 for j in succeeded if started.get(j, 0) > 1)
    ran_after_cancel = sum(
        1 for j, a, f in jobs if a == "cancel" and f and f["status"] == "cancelled" and runs.get(j)
    )
    five_xx = sum(n for s, n in out["statuses"].items() if s >= 500)
    submit = sorted(out["submit_s"])
    summary = {
        "clients": args.clients,
        "jobs": len(jobs),
        "seconds": round(seconds, 1),
        "jobs_per_second": round(len(jobs) / seconds, 1),
        "final_status": dict(final_status),
        "lost": lost,
        "succeeded_not_exactly_once": duplicated,
        "restarted_after_the_kill": restarted,
        "ran_although_cancelled_while_queued": ran_after_cancel,
        "stream_left": left,
        "pending_left": pending,
        "http_5xx": five_xx,
        "dispatcher_killed_at_s": None if killed_at is None else round(killed_at, 1),
        "submit_p50_ms": round(1000 * submit[len(submit) // 2], 1),
        "submit_p99_ms": round(1000 * submit[int(len(submit) * 0.99)], 1),
        "statuses": dict(sorted(out["statuses"].items())),
    }
    print(json.dumps(summary, indent=2))
    ok = lost == duplicated == ran_after_cancel == left == pending == five_xx == 0
    print("OK: nothing lost, nothing run twice" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
