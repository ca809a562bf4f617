"""Data-parallel meta-training through the service: Ray Train on 1 and 2 workers (issue 8).

What a user of the service gets, measured end to end on this machine: a local Ray cluster
(``workers.runtime.init_ray(None, 2)``), a :class:`workers.dispatcher.Dispatcher` in this process on
the Redis server at 127.0.0.1:6379 (a key prefix of its own), the Omniglot background zip uploaded
as a dataset, and ``meta_train`` jobs submitted with :meth:`service.jobs.JobStore.create`: the
``search64`` preset (the default until 2026-12-04), 5-way 1-shot, the 25 meta-train alphabets (the 5
meta-validation ones excluded, as ``benchmarks/algorithm.py`` does), the same seed and the same time
budget, once with ``workers=1`` and once with ``workers=2``.

- **Orchestration overhead**: the same run by a direct call of :func:`atnas.pipeline.meta_train`
  in a subprocess (one thread, no Ray); ``(direct - ray_n1) / direct`` of iterations/s.
- **Speed-up**: ``ray_n2 / ray_n1`` iterations/s (training seconds only: Ray Train's start-up
  and teardown are reported apart, from the job's timestamps).
- **Accuracy at equal wall-clock**: each supernet's meta-population best encode
  (``meta_best``), adapted and scored on the same 5-way 1-shot tasks of the 5 meta-validation
  alphabets; mean accuracy and the paired difference N2 - N1 with a 95% CI.

Every process gets ``OMP_NUM_THREADS=1`` (one thread per worker). The three runs alternate
``--repeats`` times and medians are compared. Start it on a quiet machine: it waits until the
1-minute load average is under ``--max-load``.

    python benchmarks/train_scaling.py                    # 180 s budgets: ~11 min
    python benchmarks/train_scaling.py --budget 20 --tasks 20 --out /tmp/smoke.json
    python benchmarks/train_scaling.py --preset default   # the default preset's one fixed net

``--figures`` measures instead what docs/scaling.md builds on: the supernet's parameter count
and the all-reduce volume of :class:`atnas.collective.GradSum` for the ``search64`` and
``paper`` presets, the object-store blob of ``workers.holder``, the time of one gloo
all-reduce of each size between 2 local processes (one thread each), and the Redis commands,
server time and client time of each job-store call a meta_train job makes (on a private
``redis-server`` of its own, so that its counters count nothing else), with
``redis-benchmark`` against it.

    python benchmarks/train_scaling.py --figures          # ~1 min

Prints Markdown tables; writes docs/results/train-scaling-<date>.json (scale-figures-<date>).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import io
import json
import multiprocessing as mp
import os
import pickle
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import cpu_use

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch: one thread in every process
os.environ.setdefault("MKL_NUM_THREADS", "1")

import torch  # noqa: E402

from atnas import pipeline  # noqa: E402
from atnas.evaluate import Method, evaluate, mean_ci  # noqa: E402
from atnas.metatrain import MetaState  # noqa: E402
from atnas.presets import PRESETS  # noqa: E402
from atnas.tasks import TaskSampler  # noqa: E402
from service.schemas import JobKind, JobStatus, MetaTrainSpec  # noqa: E402
from service.settings import Settings  # noqa: E402
from workers.specs import decode_limits, image_config, meta_train_overrides  # noqa: E402

META_VAL = ["Armenian", "Bengali", "Hebrew", "Korean", "Tifinagh"]
REDIS_URL = "redis://127.0.0.1:6379/0"
POLL_S = 0.2
#: The share of the budget, from the first training report, over which CPU use is counted.
CPU_WINDOW = 0.8
RUNS = ("direct", "ray_n1", "ray_n2")


def default_dataset() -> Path:
    base = Path(os.environ.get("ATNAS_DATASETS", ROOT.parent / "shared" / "datasets"))
    return base / "omniglot" / "images_background.zip"


def job_spec(args: argparse.Namespace, dataset: str, workers: int) -> MetaTrainSpec:
    """The meta_train job of every run (``dataset``: an uploaded id, or the zip for direct)."""
    return MetaTrainSpec(
        datasets=[dataset],
        exclude=META_VAL,
        way=5,
        shot=1,
        preset=args.preset,
        budget_seconds=args.budget,
        seed=args.seed,
        workers=workers,
    )


# ---------------------------------------------------------------- the direct call


def part_direct(args: argparse.Namespace) -> None:
    """The job's meta-training by a direct library call: same spec, no Ray, one thread."""
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    spec = job_spec(args, str(args.data), 1)
    images = pipeline.load_meta_images(
        [args.data], image_config(spec, decode_limits(Settings())), spec.include, spec.exclude
    )
    loaded = time.perf_counter() - t0
    state = pipeline.meta_train(
        images, spec.preset, device=torch.device("cpu"), **meta_train_overrides(spec)
    )
    state.save(args.part_out.with_suffix(".pt"))
    out = {
        "iterations": state.iteration,
        "elapsed_seconds": state.elapsed,
        "iterations_per_second": state.iteration / state.elapsed,
        "load_seconds": loaded,
        "process_seconds": time.perf_counter() - t0,
        "torch_threads": torch.get_num_threads(),
    }
    args.part_out.write_text(json.dumps(out))


def run_direct(args: argparse.Namespace, work: Path, tag: str) -> dict[str, Any]:
    out = work / f"{tag}.json"
    cmd = [sys.executable, __file__, "--part", "direct", "--part-out", str(out)]
    cmd += ["--data", str(args.data), "--budget", str(args.budget), "--seed", str(args.seed)]
    cmd += ["--preset", args.preset]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    r: dict[str, Any] = json.loads(out.read_text())
    r["wall_seconds"] = time.perf_counter() - t0  # process start, imports and load included
    r["state"] = str(out.with_suffix(".pt"))
    return r


# ---------------------------------------------------------------- through the service


def run_job(
    service: Any, args: argparse.Namespace, dataset: str, n: int, tag: str
) -> dict[str, Any]:
    """Submits one meta_train job of ``n`` workers and follows it to the end.

    Polls the job store every ``POLL_S``: when it is claimed (``running``) and when its
    rank 0 first reports a ``meta_train`` phase (after the first iteration).
    """
    jobs, ctx = service.jobs, service.ctx
    job, _ = jobs.create(JobKind.meta_train, job_spec(args, dataset, n))
    submitted = time.time()
    seen: dict[str, float] = {}
    omp: str | None = None
    # (time, processes, the Train workers' threads): two snapshots in training
    cpu: list[tuple[float, dict[int, tuple[str, float]], cpu_use.Threads]] = []
    while True:
        rec = jobs.get(job.id)
        now = time.time()
        if rec.status is JobStatus.running:
            seen.setdefault("running", now)
        if rec.progress is not None and rec.progress.phase == "meta_train":
            seen.setdefault("training", now)
            if len(cpu) == 0 or (len(cpu) == 1 and now - cpu[0][0] >= CPU_WINDOW * args.budget):
                at, snap = time.time(), cpu_use.snapshot()
                train = cpu_use.thread_snapshot(cpu_use.pids_in(snap, "ray train worker"))
                cpu.append((at, snap, train))
        if omp is None and "training" in seen:
            omp = _worker_env(ctx.settings.data_dir / "work" / job.id, "OMP_NUM_THREADS")
        if rec.status.terminal:
            break
        time.sleep(POLL_S)
    if rec.status is not JobStatus.succeeded or rec.result is None:
        raise SystemExit(f"{tag}: job {job.id} ended {rec.status.value}: {rec.error}")
    assert rec.started_at is not None and rec.finished_at is not None
    started, finished = rec.started_at.timestamp(), rec.finished_at.timestamp()
    state_path = args.workdir / f"{tag}.pt"
    shutil.copy2(ctx.artifacts.path(job.id, "supernet.pt"), state_path)
    state, _ = MetaState.load(state_path)
    res = rec.result
    # Training began about one iteration before rank 0's first meta_train report was seen.
    first_it = float(state.curve[0]["elapsed"]) if state.curve else 0.0
    train_start = seen.get("training", finished) - first_it
    return {
        "job": job.id,
        "workers": res["workers"],
        "iterations": res["iterations"],
        "elapsed_seconds": res["elapsed_seconds"],
        "iterations_per_second": res["iterations_per_second"],
        "best_architecture": res["best_architecture"],
        "best_fitness": res["best_fitness"],
        "worker_omp_num_threads": omp,
        "queued_seconds": started - rec.created_at.timestamp(),
        "submit_to_running_seconds": seen.get("running", started) - submitted,
        "startup_seconds": train_start - started,  # claim -> first iteration begins
        "teardown_seconds": finished - (train_start + res["elapsed_seconds"]),
        "submit_to_succeeded_seconds": finished - submitted,
        "cpu_cores_used": cpu_profile(cpu),
        "train_threads": thread_profile(cpu),
        "state": str(state_path),
    }


def cpu_profile(
    cpu: list[tuple[float, dict[int, tuple[str, float]], cpu_use.Threads]],
) -> dict[str, float] | None:
    """Cores each group of processes kept busy while the job trained (CPU s per wall s)."""
    if len(cpu) < 2:
        return None
    (t0, a, _), (t1, b, _) = cpu
    return {k: round(v / (t1 - t0), 3) for k, v in cpu_use.cpu_seconds(a, b).items()}


def thread_profile(
    cpu: list[tuple[float, dict[int, tuple[str, float]], cpu_use.Threads]],
) -> list[dict[str, float]] | None:
    """Each Train worker's training thread over the same window: on a CPU, waiting, blocked."""
    if len(cpu) < 2:
        return None
    (t0, _, a), (t1, _, b) = cpu
    return cpu_use.thread_shares(a, b, t1 - t0)


def _worker_env(work: Path, name: str) -> str | None:
    """``name`` in the environment of the job's rank-0 worker process (its pid is logged)."""
    try:
        pid = int((work / "trial.pids").read_text().split()[-1])
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except (OSError, ValueError, IndexError):
        return None
    for item in env:
        key, _, value = item.decode(errors="replace").partition("=")
        if key == name:
            return value
    return "unset"


def run_service(args: argparse.Namespace) -> dict[str, list[dict[str, Any]]]:
    """Ray, a dispatcher and the uploaded dataset; the runs, alternating."""
    import ray
    import redis

    from workers.dispatcher import Dispatcher
    from workers.runtime import init_ray

    init_ray(None, 2)
    settings = Settings(
        data_dir=args.workdir / "data",
        redis_url=REDIS_URL,
        key_prefix=f"atnas-scaling-{uuid.uuid4().hex[:10]}",
        evaluators=1,
    )
    r = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    service = Dispatcher(settings, r, max_jobs=1)
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in RUNS}
    try:
        with open(args.data, "rb") as f:
            dataset = service.ctx.datasets.create_from_upload(f, args.data.name, 2**31).id
        service.start()
        for rep in range(args.repeats):
            for name in RUNS:
                tag = f"{name}_r{rep}"
                if name == "direct":
                    out = run_direct(args, args.workdir, tag)
                else:
                    out = run_job(service, args, dataset, int(name[-1]), tag)
                out["load_average"] = os.getloadavg()
                runs[name].append(out)
                print(
                    f"[{rep + 1}/{args.repeats}] {name}: {out['iterations']} iterations in "
                    f"{out['elapsed_seconds']:.1f} s = {out['iterations_per_second']:.3f} it/s; "
                    f"load average {out['load_average'][0]:.2f}",
                    flush=True,
                )
                if out.get("cpu_cores_used"):
                    print(f"    cores used while training: {out['cpu_cores_used']}", flush=True)
                for w in out.get("train_threads") or []:
                    print(f"    a Train worker's training thread, share of wall: {w}", flush=True)
    finally:
        service.stop(timeout=2.0)
        service.ctx.shutdown()
        keys = list(r.scan_iter(match=f"{settings.key_prefix}:*", count=1000))
        if keys:
            r.delete(*keys)
        r.close()
        ray.shutdown()
    return runs


# ---------------------------------------------------------------- accuracy


def task_accuracies(state: MetaState, sampler: TaskSampler, n: int, seed: int) -> list[float]:
    """Query accuracy of ``state``'s meta_best, adapted, on each of ``n`` tasks drawn with
    ``seed`` (the same tasks for every state)."""
    accs: list[float] = []
    cfg = pipeline.search_defaults(state)
    evaluate(state, sampler, n, Method.META_BEST, cfg, seed, on_task=lambda _, a: accs.append(a))
    return accs


def accuracies(args: argparse.Namespace, runs: dict[str, list[dict[str, Any]]]) -> None:
    """Adds each run's meta_best and its per-task accuracies on the validation alphabets."""
    torch.set_num_threads(1)
    val = pipeline.load_meta_images([args.data]).select(include=META_VAL)
    sampler = TaskSampler(val, 5, 1, 15)
    for rs in runs.values():
        for run in rs:
            state, _ = MetaState.load(run["state"])
            run["meta_best"] = state.best_encode().key()
            run["task_acc"] = task_accuracies(state, sampler, args.tasks, args.eval_seed)


def summarise(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    speed = {k: statistics.median(r["iterations_per_second"] for r in rs) for k, rs in runs.items()}
    pairs = list(zip(runs["ray_n2"], runs["ray_n1"], strict=True))
    diff = [a - b for n2, n1 in pairs for a, b in zip(n2["task_acc"], n1["task_acc"], strict=True)]
    d_direct = [
        a - b
        for n1, d in zip(runs["ray_n1"], runs["direct"], strict=True)
        for a, b in zip(n1["task_acc"], d["task_acc"], strict=True)
    ]
    acc = {k: mean_ci([a for r in rs for a in r["task_acc"]]) for k, rs in runs.items()}
    return {
        "median_iterations_per_second": speed,
        "overhead": (speed["direct"] - speed["ray_n1"]) / speed["direct"],
        "speedup": speed["ray_n2"] / speed["ray_n1"],
        "accuracy": {k: {"mean": m, "ci95": c} for k, (m, c) in acc.items()},
        "diff_n2_n1": dict(zip(("mean", "ci95"), mean_ci(diff), strict=True)),
        "diff_n1_direct": dict(zip(("mean", "ci95"), mean_ci(d_direct), strict=True)),
    }


def _f(v: float | None) -> str:
    return "" if v is None else f"{v:.1f}"


def markdown(report: dict[str, Any]) -> str:
    s, runs = report["summary"], report["runs"]
    lines = [
        "| run | iterations | training s | it/s | start-up s | teardown s "
        "| submit → succeeded s | meta_best | 5w1s acc % (95% CI) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, rs in runs.items():
        for i, r in enumerate(rs):
            m, c = mean_ci(r["task_acc"])
            start = r.get("startup_seconds")
            wall = r.get("submit_to_succeeded_seconds", r.get("wall_seconds"))
            lines.append(
                f"| {name} #{i + 1} | {r['iterations']} | {r['elapsed_seconds']:.1f} | "
                f"{r['iterations_per_second']:.3f} | {_f(start)} | "
                f"{_f(r.get('teardown_seconds'))} | {_f(wall)} | `{r['meta_best']}` | "
                f"{100 * m:.2f} ± {100 * c:.2f} |"
            )
    d, dd = s["diff_n2_n1"], s["diff_n1_direct"]
    ok = {True: "met", False: "**missed**"}
    lines += [
        "",
        "| measure | target | result |",
        "| --- | --- | --- |",
        f"| overhead (direct − Ray N=1) / direct, it/s | ≤ 10% | {100 * s['overhead']:.1f}% "
        f"({ok[s['overhead'] <= 0.10]}) |",
        f"| speed-up Ray N=2 / N=1, it/s | ≥ 1.6× | {s['speedup']:.2f}× "
        f"({ok[s['speedup'] >= 1.6]}) |",
        f"| accuracy N=2 − N=1, same {report['args']['tasks']} tasks | — | "
        f"{100 * d['mean']:+.2f} ± {100 * d['ci95']:.2f} pts |",
        f"| accuracy Ray N=1 − direct, same tasks | — | "
        f"{100 * dd['mean']:+.2f} ± {100 * dd['ci95']:.2f} pts |",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------- all-reduce and sizes


def sizes() -> dict[str, Any]:
    """Parameters, GradSum volume and holder blob of the search64 and paper supernets."""
    from atnas.collective import GradSum
    from atnas.metatrain import Member
    from atnas.presets import get_preset
    from atnas.supernet import Supernet
    from workers.holder import to_blob

    out = {}
    for name in ("search64", "paper"):
        p = get_preset(name)
        net = Supernet(p.space)
        params = list(net.parameters())
        elements = GradSum(params, extras=2).max_elements  # every parameter touched
        cfg = dataclasses.replace(p.meta, preset=name)
        members = [Member(p.space.conv4(), 0.5)] * cfg.population
        blob = pickle.dumps(to_blob(MetaState(p.space, cfg, net, members)), protocol=5)
        buf = io.BytesIO()
        torch.save(net.state_dict(), buf)
        out[name] = {
            "parameters": sum(t.numel() for t in params),
            "tensors": len(params),
            "gradsum_elements": elements,
            "allreduce_bytes": elements * 8,  # float64
            "holder_blob_bytes": len(blob),
            "state_dict_bytes": buf.getbuffer().nbytes,
            "meta_batch": cfg.meta_batch,
            "ea_pairs": cfg.ea_tasks * (cfg.population + cfg.offspring),
        }
    return out


def _allreduce_worker(rank: int, store: str, counts: list[int], reps: int, q: Any) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo",
        init_method=Path(store).as_uri(),
        rank=rank,
        world_size=2,
        timeout=timedelta(minutes=5),
    )
    try:
        times = {}
        for n in counts:
            t = torch.ones(n, dtype=torch.float64)
            for _ in range(5):  # warm-up: connections, buffers
                dist.all_reduce(t)
            dist.barrier()
            laps = []
            for _ in range(reps):
                t0 = time.perf_counter()
                dist.all_reduce(t)
                laps.append(time.perf_counter() - t0)
            times[n] = statistics.median(laps)
        if rank == 0:
            q.put(times)
        dist.barrier()
    finally:
        dist.destroy_process_group()


def measure_allreduce(counts: list[int], reps: int) -> dict[int, float]:
    """Median seconds of one float64 gloo all-reduce of each count, 2 local processes."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    with tempfile.TemporaryDirectory() as d:
        store = str(Path(d, "store").resolve())
        procs = [
            ctx.Process(target=_allreduce_worker, args=(r, store, counts, reps, q))
            for r in range(2)
        ]
        for p in procs:
            p.start()
        times: dict[int, float] = q.get(timeout=600)
        for p in procs:
            p.join()
    return times


def _private_redis(folder: Path) -> tuple[subprocess.Popen[bytes], Path]:
    """A redis-server of our own on a unix socket (no disk, no TCP): its counters are ours."""
    sock = folder / "redis.sock"
    cmd = ["redis-server", "--port", "0", "--unixsocket", str(sock), "--dir", str(folder)]
    proc = subprocess.Popen([*cmd, "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not sock.exists():
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise SystemExit("could not start a private redis-server")
        time.sleep(0.05)
    return proc, sock


def _store_calls(r: Any) -> list[tuple[str, Any]]:
    """(name, call(i)) of every job-store call in a meta_train job's life, in its order."""
    from service.consumer import Assignment, JobConsumer
    from service.jobs import JobStore
    from service.keys import Keys
    from service.schemas import Progress

    jobs = JobStore(r, Keys("scale"))
    consumer = JobConsumer(jobs, "w1", 3)
    spec = MetaTrainSpec(datasets=["d"], workers=2)
    best = "|".join(["conv3x3:64"] * 4)
    result = {"iterations": 600, "best_architecture": best, "best_fitness": 0.8}
    extra = {"loss": 1.23, "acc": 0.56, "best_encode": best, "budget_seconds": 600.0}
    progress = Progress(phase="meta_train", step=100, message="loss 1.234", extra=extra)
    taken: list[Assignment] = []

    def claim(i: int) -> None:
        a = consumer.next(block_ms=10)
        assert a is not None
        taken.append(a)

    def finish(i: int) -> None:
        jobs.succeed(taken[i].job.id, result)
        consumer.done(taken[i])

    return [
        ("create", lambda i: jobs.create(JobKind.meta_train, spec)),
        ("claim + start", claim),
        ("progress", lambda i: jobs.update_progress(taken[i].job.id, progress)),
        ("cancel check", lambda i: jobs.cancel_requested(taken[i].job.id)),
        ("claim touch", lambda i: consumer.touch(taken[i])),
        ("get (a poll)", lambda i: jobs.get(taken[i].job.id)),
        ("succeed + ack", finish),
    ]


def job_store_costs(n: int) -> dict[str, Any]:
    """Redis commands, server microseconds and client milliseconds of each job-store call of
    a meta_train job, ``n`` of each, on a private Redis (one client, this process)."""
    import redis

    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as d:
        proc, sock = _private_redis(Path(d))
        try:
            r = redis.Redis(unix_socket_path=str(sock), decode_responses=True)
            base_memory = r.info("memory")["used_memory"]
            for name, call in _store_calls(r):
                r.config_resetstat()
                t0 = time.perf_counter()
                for i in range(n):
                    call(i)
                wall = time.perf_counter() - t0
                stats = r.info("commandstats")
                out[name] = {
                    "commands": sum(v["calls"] for v in stats.values()) / n,
                    "server_us": sum(v["usec"] for v in stats.values()) / n,
                    "client_ms": 1e3 * wall / n,
                    "by_command": {k[len("cmdstat_") :]: v["calls"] / n for k, v in stats.items()},
                }
            out["record_bytes"] = max(len(r.get(k) or "") for k in r.scan_iter("scale:job:*"))
            out["memory_bytes_per_job"] = (r.info("memory")["used_memory"] - base_memory) / n
            r.close()
            flags = ["-n", "200000", "-c", "32", "-q", "-t", "get,set,zadd"]
            bench = subprocess.run(
                ["redis-benchmark", "-s", str(sock), *flags],
                capture_output=True,
                text=True,
                check=True,
            )
            # "-q" still redraws a progress line with carriage returns: keep the final ones
            finals = [x for x in bench.stdout.replace("\r", "\n").splitlines() if " requests" in x]
            out["redis_benchmark_rps"] = {
                x.split(":")[0]: float(x.split(":")[1].split()[0]) for x in finals
            }
        finally:
            proc.terminate()
            proc.wait(10)
    return out


def run_figures(args: argparse.Namespace) -> dict[str, Any]:
    """Sizes, gloo all-reduce times and job-store costs (docs/scaling.md); prints tables."""
    sz = sizes()
    counts = sorted({2, 1_000, 100_000, 1_000_000, 10_000_000})
    counts = sorted({*counts, *(v["gradsum_elements"] for v in sz.values())})
    times = measure_allreduce(counts, args.reps)
    # t = alpha + bytes / bandwidth: alpha from the 2-element call, bandwidth from the largest
    alpha = times[2]
    bandwidth = 8.0 * counts[-1] / (times[counts[-1]] - alpha)
    print("| preset | parameters | all-reduce MB / iteration | holder blob MB | gloo 2-proc ms |")
    print("| --- | --- | --- | --- | --- |")
    for name, v in sz.items():
        print(
            f"| {name} | {v['parameters']:,} | {v['allreduce_bytes'] / 1e6:.2f} | "
            f"{v['holder_blob_bytes'] / 1e6:.2f} | {1e3 * times[v['gradsum_elements']]:.2f} |"
        )
    print("\n| float64 elements | bytes | median ms |\n| --- | --- | --- |")
    for n in counts:
        print(f"| {n:,} | {8 * n:,} | {1e3 * times[n]:.3f} |")
    print(f"\nlatency {1e6 * alpha:.0f} µs; bandwidth {8 * bandwidth / 1e9:.2f} Gbit/s")
    store = job_store_costs(args.store_jobs)
    print(
        "\n| job-store call | Redis commands | server µs | client ms |\n| --- | --- | --- | --- |"
    )
    for name, v in store.items():
        if isinstance(v, dict) and "commands" in v:
            print(f"| {name} | {v['commands']:.1f} | {v['server_us']:.1f} | {v['client_ms']:.2f} |")
    print(f"\nrecord {store['record_bytes']} B; {store['memory_bytes_per_job']:.0f} B per job")
    print(f"redis-benchmark, 32 clients, requests/s: {store['redis_benchmark_rps']}")
    return {
        "sizes": sz,
        "allreduce_seconds": {str(n): t for n, t in times.items()},
        "allreduce_latency_seconds": alpha,
        "allreduce_bytes_per_second": bandwidth,
        "job_store": store,
    }


# ---------------------------------------------------------------- main


def wait_quiet(max_load: float, max_wait: float) -> None:
    """Waits until the 1-minute load average is under ``max_load`` (or gives up loudly)."""
    deadline = time.monotonic() + max_wait
    while os.getloadavg()[0] >= max_load:
        if time.monotonic() > deadline:
            raise SystemExit(f"the machine is busy (load {os.getloadavg()[0]:.2f}): not measuring")
        print(f"load average {os.getloadavg()[0]:.2f}: waiting for a quiet machine", flush=True)
        time.sleep(15)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", type=Path, default=default_dataset(), help="Omniglot background zip")
    ap.add_argument("--budget", type=float, default=180.0, help="training seconds per run")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0, help="meta-training seed (every run)")
    ap.add_argument(
        "--preset", default="search64", help="the jobs' preset (default: search64, as measured)"
    )
    ap.add_argument("--tasks", type=int, default=200, help="5w1s validation tasks per supernet")
    ap.add_argument("--eval-seed", type=int, default=1, help="seed of the validation tasks")
    ap.add_argument("--max-load", type=float, default=0.8, help="start under this load average")
    ap.add_argument("--figures", action="store_true", help="sizes, all-reduces, job store")
    ap.add_argument("--reps", type=int, default=200, help="timed all-reduces per size")
    ap.add_argument("--store-jobs", type=int, default=500, help="job-store calls of each kind")
    ap.add_argument("--workdir", type=Path, default=None, help="states and Ray's files (kept)")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--part", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--part-out", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.part == "direct":
        part_direct(args)
        return 0
    if not args.data.is_file():
        ap.error(f"dataset {args.data} not found (--data or ATNAS_DATASETS)")
    if args.preset not in PRESETS:
        ap.error(f"unknown preset {args.preset!r} (one of {', '.join(PRESETS)})")
    date = dt.date.today().isoformat()
    kind = "scale-figures" if args.figures else "train-scaling"
    args.out = args.out or ROOT / "docs" / "results" / f"{kind}-{date}.json"
    wait_quiet(args.max_load, 600)
    report: dict[str, Any] = {
        "date": date,
        "command": " ".join(["python benchmarks/train_scaling.py", *sys.argv[1:]]),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "torch": torch.__version__,
            "load_average_at_start": os.getloadavg(),
        },
    }
    if args.figures:
        report |= run_figures(args)
    else:
        import ray

        report["machine"]["ray"] = ray.__version__
        keep = args.workdir is not None
        args.workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="train-scaling-"))).resolve()
        args.workdir.mkdir(parents=True, exist_ok=True)
        try:
            runs = run_service(args)
            accuracies(args, runs)
        finally:
            if not keep:
                shutil.rmtree(args.workdir, ignore_errors=True)
        report["args"] = {k: v for k, v in vars(args).items() if not k.startswith("part")}
        report["args"] = {
            k: str(v) if isinstance(v, Path) else v for k, v in report["args"].items()
        }
        report["runs"] = runs
        report["summary"] = summarise(runs)
        print(markdown(report))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
