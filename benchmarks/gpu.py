"""CPU vs GPU: meta-training throughput and accuracy after equal wall-clock, per preset.

Each arm meta-trains one preset on one device for ``--secs`` seconds on the Omniglot background
alphabets minus the 5 meta-validation ones, then scores the meta-population's best encode
(``meta_best``, fine-tuned) on the same 5-way 1-shot validation tasks, and times the full
per-task search (``atnas``) on a few of them. CPU arms run beside the GPU arms, with their own
threads; GPU arms run one after another. One JSON line per arm, then a markdown table.

    python benchmarks/gpu.py --secs 120 --data images_background.zip
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time
from pathlib import Path
from typing import Any

import torch

from atnas import pipeline
from atnas.evaluate import Method, evaluate
from atnas.tasks import TaskSampler

VAL = ["Armenian", "Bengali", "Hebrew", "Korean", "Tifinagh"]


def arm(preset: str, device_name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Meta-trains ``preset`` on ``device_name`` and scores it; one result row."""
    torch.manual_seed(0)
    if device_name == "cpu":
        torch.set_num_threads(args.cpu_threads)
    device = torch.device(device_name)
    img = pipeline.load_meta_images([args.data])
    train, val = img.select(exclude=VAL), img.select(include=VAL)
    t0 = time.perf_counter()
    st = pipeline.meta_train(
        train, preset, budget_seconds=args.secs, iterations=None, device=device, seed=0
    )
    wall = time.perf_counter() - t0
    cfg = pipeline.search_defaults(st)
    sampler = TaskSampler(val, 5, 1, 15)
    best = evaluate(st, sampler, args.tasks, Method.META_BEST, cfg, seed=99, device=device)
    full = (
        evaluate(st, sampler, args.search_tasks, Method.ATNAS, cfg, seed=99, device=device)
        if args.search_tasks
        else None  # --search-tasks 0: throughput and meta_best only
    )
    gpu = device.type == "cuda"
    row = {
        "preset": preset,
        "device": torch.cuda.get_device_name() if gpu else f"cpu x{args.cpu_threads}",
        "iterations": st.iteration,
        "it_per_s": round(st.iteration / wall, 3),
        "meta_best_5w1s": round(100 * best.mean_acc, 2),
        "ci95": round(100 * best.ci95, 2),
        "best": st.best_encode().key(),
        "search_5w1s": None if full is None else round(100 * full.mean_acc, 2),
        "search_s_median": None if full is None else round(full.median_seconds, 3),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    print(json.dumps(row), flush=True)
    return row


def _worker(preset: str, device_name: str, args: argparse.Namespace, q: Any) -> None:
    q.put(arm(preset, device_name, args))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--presets", nargs="+", default=["paper", "search64"])
    ap.add_argument("--secs", type=float, default=120.0)
    ap.add_argument("--tasks", type=int, default=100)
    ap.add_argument("--search-tasks", type=int, default=10, help="0: skip the per-task search")
    ap.add_argument("--cpu-threads", type=int, default=4)
    args = ap.parse_args(argv)
    if args.secs <= 0 or args.tasks < 1 or args.search_tasks < 0 or args.cpu_threads < 1:
        ap.error("--secs must be > 0, --tasks and --cpu-threads >= 1, --search-tasks >= 0")
    if not args.data.is_file():
        ap.error(f"--data {args.data}: no such file")
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    cpu = [ctx.Process(target=_worker, args=(p, "cpu", args, q)) for p in args.presets]
    for proc in cpu:
        proc.start()
    rows = []
    if torch.cuda.is_available():
        rows = [arm(p, "cuda", args) for p in args.presets]
    for proc in cpu:
        proc.join()
    while not q.empty():
        rows.append(q.get())
    print("\n| preset | device | it/s | meta_best 5w1s | search 5w1s | search s (median) |")
    print("|---|---|---|---|---|---|")
    for r in sorted(rows, key=lambda r: (r["preset"], r["device"])):
        print(
            f"| {r['preset']} | {r['device']} | {r['it_per_s']} | {r['meta_best_5w1s']} ± "
            f"{r['ci95']} | {r['search_5w1s']} | {r['search_s_median']} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
