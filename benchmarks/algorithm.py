"""Benchmark of the AT-NAS library on Omniglot (issue 2). A script, not a test.

At an equal meta-training wall-clock budget, meta-trains AT-NAS (supernet + evolution) and the
fixed Conv-4 baseline (same meta-learner, same code path) on the 25 meta-train alphabets, then
evaluates on tasks from the 5 meta-validation alphabets (Armenian, Bengali, Hebrew, Korean,
Tifinagh): mean accuracy with a 95% confidence interval and adaptation time per task, for
5-way 1-shot, 5-way 5-shot and 20-way 1-shot. Also runs "search from scratch" (the same EA and
number of candidates, every candidate trained from random initialisation on the support set).

The work is split into parts that run as subprocesses, two at a time, one torch thread each:
the two meta-trainings run side by side, so both get the same machine for the same wall-clock
budget. Then the evaluation parts (one per setting, plus scratch) run two at a time.

    python benchmarks/algorithm.py                       # the full run (20 min budgets, 600 tasks)
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
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch

from atnas import pipeline
from atnas.evaluate import Method, evaluate
from atnas.learner import InnerConfig
from atnas.metatrain import MetaState, MetaTrainConfig, Progress
from atnas.search import SearchConfig
from atnas.space import SearchSpace
from atnas.tasks import TaskSampler

ROOT = Path(__file__).resolve().parents[1]
META_VAL = ["Armenian", "Bengali", "Hebrew", "Korean", "Tifinagh"]
SETTINGS = {"5w1s": (5, 1), "5w5s": (5, 5), "20w1s": (20, 1)}
log = logging.getLogger("bench")


def default_dataset() -> Path:
    base = Path(os.environ.get("ATNAS_DATASETS", ROOT.parent / "shared" / "datasets"))
    return base / "omniglot" / "images_background.zip"


def load(args: argparse.Namespace) -> tuple[Any, Any]:
    images = pipeline.load_meta_images([args.data])
    return images.select(exclude=META_VAL), images.select(include=META_VAL)


def part_meta(args: argparse.Namespace, name: str) -> dict[str, Any]:
    """Meta-trains AT-NAS or the Conv-4 baseline for the budget; saves the state."""
    train, _ = load(args)
    last = [0.0]

    def progress(p: Progress) -> None:
        if p.elapsed - last[0] >= 60:
            last[0] = p.elapsed
            log.info(
                "%s: it %d, %.0fs, loss %.3f, acc %.3f, best fitness %s",
                name,
                p.iteration,
                p.elapsed,
                p.loss,
                p.acc,
                p.best_fitness,
            )

    extra: dict[str, Any] = (
        {"fixed_encode": SearchSpace().conv4()} if name == "conv4" else atnas_overrides(args)
    )
    state = pipeline.meta_train(
        train,
        "default",
        budget_seconds=args.meta_minutes * 60,
        iterations=None,
        seed=args.seed,
        on_progress=progress,
        **extra,
    )
    state.save(args.workdir / f"{name}.pt")
    return {
        "iterations": state.iteration,
        "seconds": state.elapsed,
        "iterations_per_second": state.iteration / state.elapsed,
        "best_encode": state.best_encode().key(),
        "population": [(m.encode.key(), m.fitness) for m in state.ranked()],
        "ea_history": state.ea_history,
    }


def atnas_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """``--atnas-set key=value`` pairs as MetaTrainConfig overrides (values parsed as JSON)."""
    out: dict[str, Any] = {}
    for item in args.atnas_set:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"bench: error: --atnas-set takes KEY=VALUE, not {item!r}")
        if key not in MetaTrainConfig.__dataclass_fields__:
            raise SystemExit(f"bench: error: --atnas-set: MetaTrainConfig has no field {key!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            raise SystemExit(f"bench: error: --atnas-set {key}: {value!r} is not JSON") from None
    return out


def part_eval(args: argparse.Namespace, key: str) -> dict[str, Any]:
    """Evaluates every method on one setting's tasks (the same tasks for every method)."""
    _, val = load(args)
    states = {n: MetaState.load(args.workdir / f"{n}.pt")[0] for n in ("atnas", "conv4")}
    way, shot = SETTINGS[key]
    sampler = TaskSampler(val, way, shot, 15)
    cfg = SearchConfig()
    wide = way > 5
    tasks = args.wide_tasks if wide and args.wide_tasks else args.tasks
    search_tasks = args.wide_search_tasks if wide and args.wide_search_tasks else args.search_tasks
    plan = [
        ("conv4", "conv4", Method.FIXED, tasks),
        ("meta_best", "atnas", Method.META_BEST, tasks),
        ("random", "atnas", Method.RANDOM, tasks),
        ("atnas", "atnas", Method.ATNAS, search_tasks),
    ]
    res = {}
    for label, st, method, n in plan:
        t0 = time.perf_counter()
        s = evaluate(states[st], sampler, n, method, cfg, seed=args.seed + 1000)
        res[label] = s.to_json()
        if method is Method.ATNAS:
            res[label]["candidate_evaluations_per_second"] = (
                s.mean_evaluations * n / (time.perf_counter() - t0)
            )
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
    return res


def part_scratch(args: argparse.Namespace) -> dict[str, Any]:
    """Search from scratch vs AT-NAS search on the same 5-way 5-shot tasks."""
    _, val = load(args)
    state, _ = MetaState.load(args.workdir / "atnas.pt")
    sampler = TaskSampler(val, 5, 5, 15)
    cfg = SearchConfig()
    scratch = evaluate(
        state,
        sampler,
        args.scratch_tasks,
        Method.SCRATCH,
        cfg,
        seed=args.seed + 2000,
        scratch_inner=InnerConfig(args.scratch_steps, 0.1),
    )
    paired = evaluate(state, sampler, args.scratch_tasks, Method.ATNAS, cfg, seed=args.seed + 2000)
    log.info(
        "scratch: %.4f in %.1fs median; atnas: %.4f in %.2fs median",
        scratch.mean_acc,
        scratch.median_seconds,
        paired.mean_acc,
        paired.median_seconds,
    )
    return {
        "scratch": scratch.to_json(),
        "atnas_same_tasks": paired.to_json(),
        "scratch_steps": args.scratch_steps,
        "speedup_median": scratch.median_seconds / paired.median_seconds,
    }


def run_part(args: argparse.Namespace) -> int:
    torch.set_num_threads(1)
    name = args.part
    if name.startswith("meta:"):
        out = part_meta(args, name.split(":", 1)[1])
    elif name.startswith("eval:"):
        out = part_eval(args, name.split(":", 1)[1])
    else:
        out = part_scratch(args)
    (args.workdir / f"{name.replace(':', '_')}.json").write_text(json.dumps(out, indent=2))
    return 0


def spawn(args: argparse.Namespace, part: str) -> dict[str, Any]:
    cmd = [
        sys.executable,
        __file__,
        "--part",
        part,
        "--data",
        str(args.data),
        "--workdir",
        str(args.workdir),
        "--meta-minutes",
        str(args.meta_minutes),
        "--tasks",
        str(args.tasks),
        "--search-tasks",
        str(args.search_tasks),
        "--wide-tasks",
        str(args.wide_tasks),
        "--wide-search-tasks",
        str(args.wide_search_tasks),
        "--scratch-tasks",
        str(args.scratch_tasks),
        "--scratch-steps",
        str(args.scratch_steps),
        "--seed",
        str(args.seed),
        *(a for item in args.atnas_set for a in ("--atnas-set", item)),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    subprocess.run(cmd, check=True, env=env)
    out: dict[str, Any] = json.loads((args.workdir / f"{part.replace(':', '_')}.json").read_text())
    return out


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", type=Path, default=default_dataset(), help="Omniglot background zip")
    ap.add_argument("--meta-minutes", type=float, default=20.0, help="meta-training budget each")
    ap.add_argument("--tasks", type=int, default=600, help="tasks per setting, baselines")
    ap.add_argument("--search-tasks", type=int, default=600, help="tasks per setting, AT-NAS")
    ap.add_argument(
        "--wide-tasks", type=int, default=0, help="20-way tasks, baselines (0: as --tasks)"
    )
    ap.add_argument(
        "--wide-search-tasks",
        type=int,
        default=0,
        help="20-way tasks, AT-NAS (0: as --search-tasks)",
    )
    ap.add_argument("--scratch-tasks", type=int, default=20, help="5w5s tasks, from scratch")
    ap.add_argument("--scratch-steps", type=int, default=100, help="SGD steps per candidate")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--atnas-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a MetaTrainConfig field for AT-NAS only (e.g. explore=0.0); repeatable",
    )
    ap.add_argument("--workdir", type=Path, default=ROOT / "benchmarks" / "out" / "algorithm")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "algorithm.json")
    ap.add_argument(
        "--reuse-meta",
        action="store_true",
        help="skip meta-training when the workdir already holds both states",
    )
    ap.add_argument("--part", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    if not args.data.is_file():
        print(
            f"bench: error: dataset {args.data} not found (--data or ATNAS_DATASETS)",
            file=sys.stderr,
        )
        return 2
    atnas_overrides(args)  # a bad --atnas-set fails here, in one line, before any work
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.part:
        return run_part(args)
    started = time.time()
    with ThreadPoolExecutor(2) as pool:
        done = all((args.workdir / f"meta_{n}.json").is_file() for n in ("atnas", "conv4"))
        if args.reuse_meta and done:
            metas = [
                json.loads((args.workdir / f"meta_{n}.json").read_text())
                for n in ("atnas", "conv4")
            ]
        else:
            metas = list(pool.map(lambda p: spawn(args, p), ["meta:atnas", "meta:conv4"]))
        evals = list(
            pool.map(lambda p: spawn(args, p), ["eval:5w1s", "eval:5w5s", "eval:20w1s", "scratch"])
        )
    report: dict[str, Any] = {
        "date": dt.date.today().isoformat(),
        "command": "python " + " ".join(sys.argv),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "torch": torch.__version__,
            "device": "cpu",
            "threads_per_part": 1,
            "parts_at_once": 2,
        },
        "meta_budget_seconds": args.meta_minutes * 60,
        "atnas_overrides": atnas_overrides(args),
        "meta_atnas": metas[0],
        "meta_conv4": metas[1],
        "results": {
            "5w1s": evals[0],
            "5w5s": evals[1],
            "20w1s": evals[2],
            "scratch_5w5s": evals[3],
        },
    }
    r = report["results"]
    report["targets"] = {
        "atnas_minus_conv4_5w1s_points": 100
        * (r["5w1s"]["atnas"]["mean_acc"] - r["5w1s"]["conv4"]["mean_acc"]),
        "median_search_adapt_seconds_5w5s": r["5w5s"]["atnas"]["median_seconds"],
        "speedup_vs_scratch": r["scratch_5w5s"]["speedup_median"],
        "accuracy_atnas_minus_scratch_points": 100
        * (
            r["scratch_5w5s"]["atnas_same_tasks"]["mean_acc"]
            - r["scratch_5w5s"]["scratch"]["mean_acc"]
        ),
    }
    report["total_seconds"] = time.time() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(markdown(report))
    return 0


def markdown(r: dict[str, Any]) -> str:
    a, c = r["meta_atnas"], r["meta_conv4"]
    lines = [
        f"Run {r['date']}: `{r['command']}` on {r['machine']['platform']}, "
        f"{r['machine']['cpus']} CPUs, torch {r['machine']['torch']}, CPU only; "
        "each part one torch thread, two parts at a time.",
        "",
        f"Meta-training budget {r['meta_budget_seconds']:.0f}s each (side by side): AT-NAS "
        f"{a['iterations']} iterations ({a['iterations_per_second']:.2f} it/s), Conv-4 "
        f"{c['iterations']} iterations ({c['iterations_per_second']:.2f} it/s). "
        f"Best meta-population encode: `{a['best_encode']}`.",
        "",
        "| setting | method | tasks | accuracy % (95% CI) | median s/task | p95 s/task |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    rows = [(k, lab, s) for k in SETTINGS for lab, s in r["results"][k].items()]
    sc = r["results"]["scratch_5w5s"]
    rows += [
        ("5w5s", "scratch", sc["scratch"]),
        ("5w5s", "atnas (same tasks)", sc["atnas_same_tasks"]),
    ]
    for key, label, s in rows:
        lines.append(
            f"| {key} | {label} | {s['tasks']} | {100 * s['mean_acc']:.2f} ± "
            f"{100 * s['ci95']:.2f} | {s['median_seconds']:.3f} | {s['p95_seconds']:.3f} |"
        )
    lines += ["", "Targets: " + json.dumps(r["targets"])]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
