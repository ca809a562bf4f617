"""``atnas demo``: the whole product on one machine, end to end, with embedded defaults.

Starts ``atnas serve`` (embedded Redis, local Ray) on a free port, uploads the Omniglot
background set, meta-trains on the meta-train alphabets with a short budget, builds a 5-way
5-shot task from a held-out alphabet, searches an architecture for it, downloads the model and
prints the architecture, its accuracy and where the artifacts are.
"""

from __future__ import annotations

import argparse
import io
import json
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from atnas_cli import datasets

META_VAL = ["Armenian", "Bengali", "Hebrew", "Korean", "Tifinagh"]


def default_dataset() -> Path:
    """A local copy of Omniglot's background zip, else the cache where the demo fetches it.

    Looked for in ``$ATNAS_DATASETS/omniglot/``, ``../shared/datasets/omniglot/`` and
    ``$ATNAS_CACHE/datasets/omniglot/`` (``atnas datasets fetch omniglot``).
    """
    return datasets.locate("omniglot") or datasets.cached_path(datasets.CATALOG["omniglot"])


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Registers ``demo``."""
    p = sub.add_parser(
        "demo",
        help="run the service end to end on Omniglot (upload, meta-train, search, download)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--data",
        type=Path,
        default=None,
        help="Omniglot images_background.zip (default: $ATNAS_DATASETS/omniglot/..., "
        "../shared/datasets/omniglot/... or the cache; downloaded into the cache when missing)",
    )
    p.add_argument(
        "--budget-seconds",
        type=float,
        default=180.0,
        help="meta-training budget (default: %(default)s)",
    )
    p.add_argument(
        "--search-seconds", type=float, default=60.0, help="search budget (default: %(default)s)"
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        default=Path(".atnas-demo"),
        help="service data directory (default: %(default)s)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("atnas-demo-output"),
        help="where the model files are downloaded (default: %(default)s)",
    )
    p.add_argument(
        "--alphabet",
        default="Tifinagh",
        choices=META_VAL,
        help="held-out alphabet of the demo task",
    )
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_demo)


def groups_zip(source: Path, groups: list[str]) -> bytes:
    """The chosen top-level groups (e.g. alphabets) of a wrapped class-folder zip, bytes as-is."""
    buf = io.BytesIO()
    with zipfile.ZipFile(source) as z, zipfile.ZipFile(buf, "w") as out:
        for name in z.namelist():
            parts = PurePosixPath(name).parts
            if len(parts) > 2 and parts[1] in groups and not name.endswith("/"):
                out.writestr(name, z.read(name))
    return buf.getvalue()


def task_zip(source: Path, alphabet: str, way: int, shot: int, query: int, seed: int) -> bytes:
    """A task zip (support/<class>/*, query/<class>/*) drawn from one alphabet of ``source``."""
    with zipfile.ZipFile(source) as z:
        by_class: dict[str, list[str]] = {}
        for name in z.namelist():
            p = PurePosixPath(name)
            if p.suffix.lower() == ".png" and alphabet in p.parts[:-1]:
                by_class.setdefault(str(p.parent), []).append(name)
        classes = sorted(by_class)
        if len(classes) < way:
            raise SystemExit(
                f"atnas: error: {alphabet} has only {len(classes)} classes in {source}"
            )
        rng = np.random.default_rng(seed)
        picks = [classes[i] for i in rng.choice(len(classes), way, replace=False)]
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as out:
            for c in picks:
                files = sorted(by_class[c])
                files = [files[i] for i in rng.permutation(len(files))]
                label = PurePosixPath(c).name
                for i, f in enumerate(files[: shot + query]):
                    split = "support" if i < shot else "query"
                    out.writestr(f"{split}/{alphabet}-{label}/{PurePosixPath(f).name}", z.read(f))
        return buf.getvalue()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _say(msg: str) -> None:
    print(f"[demo] {msg}", flush=True)


def _wait_job(client: Any, job_id: str, label: str) -> Any:
    last = ""
    while True:
        job = client.job(job_id)
        p = job.progress
        line = f"{label}: {job.status.value}"
        if p is not None:
            line += f" · {p.phase} {p.step}" + (f"/{p.total}" if p.total else "")
            if p.best_fitness is not None:
                line += f" · best fitness {p.best_fitness:.3f}"
            line += f" · {p.elapsed:.0f}s"
        if line != last:
            _say(line)
            last = line
        if job.status.value in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(2.0)


def cmd_demo(args: argparse.Namespace) -> int:
    """Runs the demo; returns 0 when the search succeeded."""
    from api.client import AtnasClient

    data = args.data or default_dataset()
    if args.data is None and not data.is_file():
        _say(f"Omniglot not found locally: downloading it into {data.parent}")
        data = datasets.download("omniglot")
    if not data.is_file():
        raise SystemExit(
            f"atnas: error: dataset {data} not found (pass --data or set ATNAS_DATASETS)"
        )
    args.data_dir.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    log_path = args.data_dir / "serve.log"
    _say(f"starting the service on 127.0.0.1:{port} (embedded Redis, local Ray; log {log_path})")
    with open(log_path, "ab") as log_file:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "atnas_cli.main",
                "serve",
                "--port",
                str(port),
                "--data-dir",
                str(args.data_dir),
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        client = AtnasClient(f"http://127.0.0.1:{port}", timeout=120)
        deadline = time.monotonic() + 180
        while True:
            if server.poll() is not None:
                raise SystemExit(f"atnas: error: the service exited; see {log_path}")
            try:
                client.ready()
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise SystemExit(
                        f"atnas: error: the service did not get ready; see {log_path}"
                    ) from None
                time.sleep(1.0)
        t0 = time.monotonic()
        ds = client.upload_dataset(data)
        _say(
            f"uploaded {data.name}: {len(ds.classes)} classes in {len(ds.groups)} alphabets "
            f"({time.monotonic() - t0:.1f}s)"
        )
        task_path = args.data_dir / f"task-{args.alphabet}.zip"
        task_path.write_bytes(task_zip(data, args.alphabet, 5, 5, 15, args.seed))
        task = client.upload_dataset(task_path)
        _say(
            f"uploaded a 5-way 5-shot task from the held-out alphabet {args.alphabet}: "
            f"{task.classes}"
        )
        mt = client.submit(
            "meta_train",
            {
                "datasets": [ds.id],
                "exclude": META_VAL,
                # 1-shot training tasks: about twice the iterations of 5-shot ones in the
                # same budget, which matters more than matching the task's shot at this budget.
                "way": 5,
                "shot": 1,
                "query": 5,
                "budget_seconds": args.budget_seconds,
                "seed": args.seed,
            },
        )
        _say(f"meta_train job {mt.id} queued ({args.budget_seconds:.0f}s budget)")
        job = _wait_job(client, mt.id, "meta_train")
        if job.status.value != "succeeded":
            raise SystemExit(f"atnas: error: meta_train {job.status.value}: {job.error}")
        res = job.result or {}
        _say(
            f"meta-trained {res.get('iterations')} iterations; best meta-population "
            f"architecture {res.get('best_architecture')}"
        )
        sj = client.submit(
            "search",
            {
                "supernet": mt.id,
                "dataset": task.id,
                "budget_seconds": args.search_seconds,
                "seed": args.seed,
            },
        )
        job = _wait_job(client, sj.id, "search")
        if job.status.value != "succeeded":
            raise SystemExit(f"atnas: error: search {job.status.value}: {job.error}")
        r = job.result or {}
        args.out.mkdir(parents=True, exist_ok=True)
        for a in client.artifacts(sj.id):
            client.download(sj.id, a.name, args.out / a.name)
        print()
        print(f"architecture:      {r.get('architecture')}")
        if r.get("model") == "pixel_centroid":
            print("model:             nearest centroid on pixels (it beat the subnet on held-out")
            print("                   support images; see floors in metrics.json)")
        print(f"support accuracy:  {r.get('support_acc'):.3f}")
        print(
            f"query accuracy:    {r.get('query_acc'):.3f}  (75 query images the search never saw)"
        )
        print(
            f"search + adapt:    {r.get('search_seconds', 0) + r.get('adapt_seconds', 0):.1f}s, "
            f"{r.get('evaluations')} candidate(s) scored"
        )
        files = ", ".join(sorted(p.name for p in args.out.iterdir()))
        print(f"artifacts:         {args.out.resolve()} ({files})")
        print(f"service data:      {args.data_dir.resolve()}")
        print(json.dumps({"search_job": sj.id, "meta_train_job": mt.id}))
        return 0
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
