"""Data-parallel meta-training speed: 1 worker against N gloo workers, one thread each (issue 8).

Meta-trains the ``search64`` preset (the default until 2026-12-04; ``--preset``) on Omniglot (the
background alphabets less the 5 meta-validation ones) for a fixed number of iterations, EA rounds
included, first on one process, then on N processes joined in a gloo process group on this machine,
each a replica taking 1/N of every meta-batch (:mod:`atnas.collective`). No Ray: this measures the
algorithm's own scaling; Ray Train against direct processes is measured on the workers' side. Both
runs use the same seed, so they train the same run: their final populations must match (the
gradients are summed exactly; see :class:`atnas.collective.GradSum`). The two settings alternate
``--repeats`` times, and the medians are compared, so that a burst of other load on the machine does
not land on one of them only; the load average is printed beside.

    python benchmarks/distributed.py                     # 60 iterations, meta-batch 8, N = 2
    python benchmarks/distributed.py --iterations 20 --workers 2 --meta-batch 16

Prints one line per run and the speed-up; writes benchmarks/out/distributed.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from atnas import pipeline
from atnas.collective import Collective, Single, TorchCollective
from atnas.data import ImageSet

ROOT = Path(__file__).resolve().parents[1]
META_VAL = ["Armenian", "Bengali", "Hebrew", "Korean", "Tifinagh"]


def default_dataset() -> Path:
    base = Path(os.environ.get("ATNAS_DATASETS", ROOT.parent / "shared" / "datasets"))
    return base / "omniglot" / "images_background.zip"


def train(images: ImageSet, args: argparse.Namespace, col: Collective) -> dict[str, Any]:
    """One (replica of a) run; its wall time and outcome."""
    trainer = pipeline.meta_trainer(
        images,
        args.preset,
        device=torch.device("cpu"),
        collective=col,
        iterations=args.iterations,
        budget_seconds=None,
        meta_batch=args.meta_batch,
        ea_every=args.ea_every,
        seed=args.seed,
    )
    stamps: list[float] = []
    t0 = time.perf_counter()
    state = trainer.run(lambda p: stamps.append(time.perf_counter()))
    wall = time.perf_counter() - t0
    # timed after the warm-up iterations (allocator and kernel caches fill during the first)
    timed = state.iteration - args.warmup
    return {
        "rank": col.rank,
        "world": col.world,
        "wall_seconds": wall,
        "timed_seconds": stamps[-1] - stamps[args.warmup - 1],
        "timed_iterations": timed,
        "iterations": state.iteration,
        "ea_rounds": len(state.ea_history),
        "final_loss": state.curve[-1]["loss"],
        "population": [(m.encode.key(), m.fitness) for m in state.ranked()],
    }


def _worker(
    rank: int, world: int, store: str, images: ImageSet, args: argparse.Namespace, q: Any
) -> None:
    torch.set_num_threads(1)
    if world == 1:
        q.put(train(images, args, Single()))
        return
    dist.init_process_group(
        "gloo",
        init_method=Path(store).as_uri(),
        rank=rank,
        world_size=world,
        timeout=timedelta(minutes=10),
    )
    try:
        q.put(train(images, args, TorchCollective()))
        dist.barrier()  # none leaves while another still uses the group
    finally:
        dist.destroy_process_group()


def run_world(images: ImageSet, args: argparse.Namespace, world: int) -> dict[str, Any]:
    """The run on ``world`` fresh processes (one thread each); rank 0's result."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    with tempfile.TemporaryDirectory() as d:  # the workers meet through a file store
        store = str(Path(d, "store").resolve())
        procs = [
            ctx.Process(target=_worker, args=(r, world, store, images, args, q))
            for r in range(world)
        ]
        for p in procs:
            p.start()
        results = [q.get(timeout=3600) for _ in procs]
        for p in procs:
            p.join()
    for p in procs:
        if p.exitcode != 0:
            raise SystemExit(f"a worker of the {world}-process run failed ({p.exitcode})")
    results.sort(key=lambda r: r["rank"])
    out = dict(results[0])
    out["wall_seconds"] = max(r["wall_seconds"] for r in results)  # the slowest replica
    out["timed_seconds"] = max(r["timed_seconds"] for r in results)
    out["iterations_per_second"] = out["timed_iterations"] / out["timed_seconds"]
    return out


def _fitness(value: float | None) -> str:
    """A member's fitness for the log; a fixed net's run (no EA) has none."""
    return "no EA" if value is None else f"{value:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=default_dataset())
    ap.add_argument("--preset", default="search64")
    ap.add_argument("--iterations", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=5, help="iterations left out of the timing")
    ap.add_argument("--meta-batch", type=int, default=8)
    ap.add_argument("--ea-every", type=int, default=20)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "distributed.json")
    args = ap.parse_args()
    if not 1 <= args.warmup < args.iterations:
        ap.error("--warmup must be at least 1 and below --iterations")
    os.environ["OMP_NUM_THREADS"] = "1"  # inherited by the spawned processes
    t0 = time.perf_counter()
    images = pipeline.load_meta_images([args.data]).select(exclude=META_VAL)
    print(f"{images.num_classes} classes loaded in {time.perf_counter() - t0:.1f} s")
    runs: dict[int, list[dict[str, Any]]] = {1: [], args.workers: []}
    for rep in range(args.repeats):
        for world in runs:
            r = run_world(images, args, world)
            r["load_average"] = os.getloadavg()
            runs[world].append(r)
            print(
                f"[{rep + 1}/{args.repeats}] N={world}: {r['iterations']} iterations "
                f"({r['ea_rounds']} EA rounds) in {r['wall_seconds']:.2f} s; "
                f"{r['iterations_per_second']:.2f} it/s after {args.warmup}; "
                f"best {r['population'][0][0]} ({_fitness(r['population'][0][1])}); "
                f"load average {r['load_average'][0]:.2f}"
            )
    speed = {w: statistics.median(r["iterations_per_second"] for r in rs) for w, rs in runs.items()}
    speedup = speed[args.workers] / speed[1]
    pops = {tuple(k for k, _ in r["population"]) for rs in runs.values() for r in rs}
    same = len(pops) == 1
    print(
        f"median: N=1 {speed[1]:.2f} it/s, N={args.workers} {speed[args.workers]:.2f} it/s; "
        f"speed-up {speedup:.2f}x; same population in every run: {same}"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "torch": torch.__version__,
        "runs": {str(k): v for k, v in runs.items()},
        "median_iterations_per_second": {str(k): v for k, v in speed.items()},
        "speedup": speedup,
        "same_population": same,
    }
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
