"""Benchmark of the AT-NAS library on Omniglot (issue 2). A script, not a test.

At an equal meta-training wall-clock budget, meta-trains AT-NAS (supernet + evolution) and the
fixed Conv-4 baseline (same meta-learner, same code path) on the 25 meta-train alphabets, then
evaluates on tasks from the 5 meta-validation alphabets (Armenian, Bengali, Hebrew, Korean,
Tifinagh): mean accuracy with a 95% confidence interval and adaptation time per task, for
5-way 1-shot, 5-way 5-shot and 20-way 1-shot. Also runs "search from scratch" (the same EA and
number of candidates, every candidate trained from random initialisation on the support set).

    python benchmarks/algorithm.py                       # the full run (2 x 20 min + evaluation)
    python benchmarks/algorithm.py --meta-minutes 1 --tasks 20 --search-tasks 10 --scratch-tasks 2

Writes benchmarks/out/algorithm.json and prints a Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch

from atnas import pipeline
from atnas.evaluate import Method, Summary, evaluate
from atnas.learner import InnerConfig
from atnas.metatrain import MetaState, Progress
from atnas.search import SearchConfig
from atnas.tasks import TaskSampler

ROOT = Path(__file__).resolve().parents[1]
META_VAL = ["Armenian", "Bengali", "Hebrew", "Korean", "Tifinagh"]
SETTINGS = [(5, 1), (5, 5), (20, 1)]
log = logging.getLogger("bench")


def default_dataset() -> Path:
    base = Path(os.environ.get("ATNAS_DATASETS", ROOT.parent / "shared" / "datasets"))
    return base / "omniglot" / "images_background.zip"


def meta_train(images: Any, budget: float, fixed: bool, seed: int) -> MetaState:
    label = "conv4" if fixed else "atnas"
    last = [0.0]

    def progress(p: Progress) -> None:
        if p.elapsed - last[0] >= 60:
            last[0] = p.elapsed
            log.info(
                "%s: it %d, %.0fs, loss %.3f, acc %.3f, best fitness %s",
                label,
                p.iteration,
                p.elapsed,
                p.loss,
                p.acc,
                p.best_fitness,
            )

    extra: dict[str, Any] = {}
    if fixed:
        from atnas.space import SearchSpace

        extra["fixed_encode"] = SearchSpace().conv4()
    state = pipeline.meta_train(
        images,
        "default",
        budget_seconds=budget,
        iterations=None,
        seed=seed,
        on_progress=progress,
        **extra,
    )
    log.info(
        "%s: %d iterations in %.0fs (%.2f it/s)",
        label,
        state.iteration,
        state.elapsed,
        state.iteration / state.elapsed,
    )
    return state


def row(s: Summary) -> dict[str, Any]:
    return s.to_json()


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", type=Path, default=default_dataset(), help="Omniglot background zip")
    ap.add_argument(
        "--meta-minutes", type=float, default=20.0, help="meta-training budget per method"
    )
    ap.add_argument("--tasks", type=int, default=600, help="tasks per setting for the baselines")
    ap.add_argument(
        "--search-tasks", type=int, default=600, help="tasks per setting for AT-NAS search"
    )
    ap.add_argument(
        "--scratch-tasks", type=int, default=20, help="5-way 5-shot tasks for search from scratch"
    )
    ap.add_argument(
        "--scratch-steps", type=int, default=100, help="SGD steps per candidate from scratch"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "algorithm.json")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    if not args.data.is_file():
        print(
            f"bench: error: dataset {args.data} not found (set --data or ATNAS_DATASETS)",
            file=sys.stderr,
        )
        return 2
    started = time.time()
    images = pipeline.load_meta_images([args.data])
    train = images.select(exclude=META_VAL)
    val = images.select(include=META_VAL)
    budget = args.meta_minutes * 60
    report: dict[str, Any] = {
        "date": dt.date.today().isoformat(),
        "command": "python " + " ".join(sys.argv),
        "machine": {
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "platform": platform.platform(),
            "torch": torch.__version__,
            "device": str(pipeline.default_device()),
        },
        "meta_budget_seconds": budget,
        "meta_train_classes": train.num_classes,
        "meta_val_classes": val.num_classes,
    }
    states = {}
    for name, fixed in (("atnas", False), ("conv4", True)):
        st = meta_train(train, budget, fixed, args.seed)
        states[name] = st
        report[f"meta_{name}"] = {
            "iterations": st.iteration,
            "seconds": st.elapsed,
            "iterations_per_second": st.iteration / st.elapsed,
            "best_encode": st.best_encode().key(),
            "population": [(m.encode.key(), m.fitness) for m in st.ranked()],
        }
    search_cfg = SearchConfig()
    results: dict[str, Any] = {}
    for way, shot in SETTINGS:
        key = f"{way}w{shot}s"
        sampler = TaskSampler(val, way, shot, 15)
        res = {}
        plan = [
            ("conv4", states["conv4"], Method.FIXED, args.tasks),
            ("meta_best", states["atnas"], Method.META_BEST, args.tasks),
            ("random", states["atnas"], Method.RANDOM, args.tasks),
            ("atnas", states["atnas"], Method.ATNAS, args.search_tasks),
        ]
        for label, st, method, n in plan:
            t0 = time.perf_counter()
            s = evaluate(st, sampler, n, method, search_cfg, seed=args.seed + 1000)
            res[label] = row(s)
            if method is Method.ATNAS:
                evals = s.mean_evaluations * n
                res[label]["candidate_evaluations_per_second"] = evals / (time.perf_counter() - t0)
            log.info(
                "%s %s: %.4f ± %.4f (%d tasks), median %.2fs p95 %.2fs",
                key,
                label,
                s.mean_acc,
                s.ci95,
                n,
                s.median_seconds,
                s.p95_seconds,
            )
        results[key] = res
    # Search from scratch vs AT-NAS on the same 5-way 5-shot tasks.
    sampler = TaskSampler(val, 5, 5, 15)
    scratch = evaluate(
        states["atnas"],
        sampler,
        args.scratch_tasks,
        Method.SCRATCH,
        search_cfg,
        seed=args.seed + 2000,
        scratch_inner=InnerConfig(args.scratch_steps, 0.1),
    )
    paired = evaluate(
        states["atnas"],
        sampler,
        args.scratch_tasks,
        Method.ATNAS,
        search_cfg,
        seed=args.seed + 2000,
    )
    results["scratch_5w5s"] = {
        "scratch": row(scratch),
        "atnas_same_tasks": row(paired),
        "speedup_median": scratch.median_seconds / paired.median_seconds,
    }
    r5 = results["5w1s"]
    report["results"] = results
    report["targets"] = {
        "atnas_minus_conv4_5w1s_points": 100 * (r5["atnas"]["mean_acc"] - r5["conv4"]["mean_acc"]),
        "median_search_adapt_seconds_5w5s": results["5w5s"]["atnas"]["median_seconds"],
        "speedup_vs_scratch": results["scratch_5w5s"]["speedup_median"],
        "accuracy_atnas_minus_scratch_points": 100 * (paired.mean_acc - scratch.mean_acc),
    }
    report["total_seconds"] = time.time() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(markdown(report))
    return 0


def markdown(r: dict[str, Any]) -> str:
    lines = [
        f"Run {r['date']}: `{r['command']}` on {r['machine']['platform']}, "
        f"{r['machine']['cpus']} CPUs, torch {r['machine']['torch']} ({r['machine']['device']}).",
        "",
        f"Meta-training budget {r['meta_budget_seconds']:.0f}s each: AT-NAS "
        f"{r['meta_atnas']['iterations']} iterations ({r['meta_atnas']['iterations_per_second']:.2f} it/s), "
        f"Conv-4 {r['meta_conv4']['iterations']} iterations ({r['meta_conv4']['iterations_per_second']:.2f} it/s). "
        f"Best meta-population encode: `{r['meta_atnas']['best_encode']}`.",
        "",
        "| setting | method | tasks | accuracy (95% CI) | median s/task | p95 s/task |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for key in ("5w1s", "5w5s", "20w1s"):
        for label, s in r["results"][key].items():
            lines.append(
                f"| {key} | {label} | {s['tasks']} | {100 * s['mean_acc']:.2f} ± {100 * s['ci95']:.2f} "
                f"| {s['median_seconds']:.3f} | {s['p95_seconds']:.3f} |"
            )
    sc = r["results"]["scratch_5w5s"]
    for label in ("scratch", "atnas_same_tasks"):
        s = sc[label]
        lines.append(
            f"| 5w5s | {label} | {s['tasks']} | {100 * s['mean_acc']:.2f} ± {100 * s['ci95']:.2f} "
            f"| {s['median_seconds']:.3f} | {s['p95_seconds']:.3f} |"
        )
    lines += ["", "Targets: " + json.dumps(r["targets"])]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
