"""Paired benchmark of AT-NAS against fixed nets of matching cost on Omniglot (issue 6).

At an equal meta-training wall-clock budget, one thread each, side by side, it meta-trains per
seed: AT-NAS as the product does by default (``--preset default``: since 2026-12-06 the widths
AT-NAS's search found, ``32,64,128,128``, with layers 2-4 separable, meta-trained alone;
``--preset dense128`` for the same widths as conv 3x3, the default before; ``--preset search64``
or ``late128`` for a supernet with an evolution at meta-training time) and the fixed Conv-4 at
widths 64, 32 and 16 (the same meta-learner and code path; Conv-4-32 and -16 cost about as much as
AT-NAS nets limited to ~3M and ~1M MACs), each at its own meta-rate (``--fixed-rates``: by default
the rate that gave each width its best accuracy at 20 minutes in docs/benchmarks.md's screens,
rounds 26-29: 1e-3 for Conv-4-64, 6e-3 for -32 and -16; until 2026-12-06 all three ran at 1e-3,
which left the small nets below their best). Snapshots are kept at each ``--checkpoints`` minute,
so accuracy against meta-training time comes from the same runs.

Then, on tasks from the 5 meta-validation alphabets (Armenian, Bengali, Hebrew, Korean,
Tifinagh), **every method scores the same tasks**, and per-task accuracies are stored:

- ``pixel_centroid`` and ``proto_*``: the floors (nearest centroid on raw pixels; nearest
  prototype on a net's meta-trained features, no gradient step);
- ``conv4_64`` / ``conv4_32`` / ``conv4_16``: the fixed nets, adapted;
- ``meta_best``: the meta-population's best encode (a fixed-net preset's one net), adapted, no
  per-task search;
- ``conv4_on_supernet``: the Conv-4 encode on the AT-NAS supernet;
- ``atnas``: what a search job does (the preset's search settings, as
  :func:`atnas.pipeline.search_defaults` gives them: on a supernet that trained one net, adapt
  that net); ``atnas_le_c32`` / ``atnas_le_c16``: the same with ``max_macs`` set to the cost of
  Conv-4-32 / -16, a search over the space (and ``meta_best_le_*`` without search);
- ``oracle``: on the first ``--oracle-tasks`` tasks, every candidate the search scored is adapted
  and scored on one half of the query; the best on half A, scored on half B, against the
  search's choice and meta_best on half B: the headroom of per-task selection and the share of
  it the search captures.

The report gives the paired difference of each method to Conv-4-64 (and of each constrained
AT-NAS to the fixed net of equal cost) with a 95% CI over all tasks of all seeds.

    python benchmarks/algorithm.py                       # 3 seeds, 20 min budgets (hours)
    python benchmarks/algorithm.py --checkpoints 0.5 1 --seeds 0 --tasks 10 --wide-tasks 5
    python benchmarks/algorithm.py --preset search64     # the default until 2026-12-04

Writes benchmarks/out/algorithm.json and prints Markdown for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import math
import os
import platform
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from domains import SHIFTS, shifted  # benchmarks/domains.py (a script's folder is on sys.path)
from svgplot import scatter

from atnas import pipeline
from atnas.cost import arch_cost
from atnas.errors import AtnasError, ConfigError
from atnas.evaluate import mean_ci
from atnas.evolution import Constraint
from atnas.fitness import adapt_encode
from atnas.floors import feature_prototype_acc, pixel_centroid_acc
from atnas.learner import InnerConfig, score
from atnas.limits import CostLimits, within
from atnas.metatrain import MetaState, MetaTrainConfig, Progress
from atnas.pipeline import search_defaults
from atnas.presets import PRESETS
from atnas.search import SearchConfig, search, seed_population
from atnas.space import Encode, LayerChoice
from atnas.tasks import Task, TaskSampler

ROOT = Path(__file__).resolve().parents[1]
META_VAL = ["Armenian", "Bengali", "Hebrew", "Korean", "Tifinagh"]
SETTINGS = {"5w1s": (5, 1), "5w5s": (5, 5), "20w1s": (20, 1)}
NETS = ("atnas", "conv4_64", "conv4_32", "conv4_16")
#: The fixed nets' meta-rates (``--fixed-rates``): each width's best at 20 minutes of the rates
#: screened (docs/benchmarks.md, rounds 26-29; search64's own rate, 1e-3, for Conv-4-64).
FIXED_RATES = {64: 1e-3, 32: 6e-3, 16: 6e-3}
log = logging.getLogger("bench")


def default_dataset() -> Path:
    base = Path(os.environ.get("ATNAS_DATASETS", ROOT.parent / "shared" / "datasets"))
    return base / "omniglot" / "images_background.zip"


def conv4(width: int) -> Encode:
    return Encode(tuple(LayerChoice("conv3x3", width) for _ in range(4)))


def snapshot(args: argparse.Namespace, net: str, seed: int, minutes: float) -> Path:
    workdir: Path = args.workdir
    return workdir / f"{net}_s{seed}_m{minutes:g}.pt"


# ---------------------------------------------------------------- meta-training


def part_meta(args: argparse.Namespace, net: str, seed: int) -> dict[str, Any]:
    """Meta-trains one net for the budget, saving a snapshot at every checkpoint minute."""
    images = pipeline.load_meta_images([args.data]).select(exclude=META_VAL)
    overrides: dict[str, Any] = atnas_overrides(args) if net == "atnas" else {}
    if net != "atnas":
        width = int(net.split("_")[1])
        overrides["fixed_encode"] = conv4(width)
        overrides["meta_lr"] = args.fixed_rates[width]
    trainer = pipeline.meta_trainer(
        images,
        args.preset if net == "atnas" else "search64",  # the fixed nets in search64's space
        budget_seconds=max(args.checkpoints) * 60,
        iterations=None,
        seed=seed,
        device=torch.device("cpu"),
        **overrides,
    )
    pending = sorted(args.checkpoints)
    last_log = [0.0]

    def progress(p: Progress) -> None:
        while pending and p.elapsed >= pending[0] * 60:
            trainer.state.save(snapshot(args, net, seed, pending.pop(0)))
        if p.elapsed - last_log[0] >= 60:
            last_log[0] = p.elapsed
            log.info("%s s%d: it %d, %.0fs, acc %.3f", net, seed, p.iteration, p.elapsed, p.acc)

    state = trainer.run(progress)
    for m in pending:  # the budget ran out a hair before the last checkpoint
        state.save(snapshot(args, net, seed, m))
    return {
        "meta_lr": state.config.meta_lr,
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
            raise ConfigError(f"--atnas-set takes KEY=VALUE, not {item!r}")
        if key not in MetaTrainConfig.__dataclass_fields__:
            raise ConfigError(f"--atnas-set: MetaTrainConfig has no field {key!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            raise ConfigError(f"--atnas-set {key}: {value!r} is not JSON") from None
        if key == "inner":
            try:
                out[key] = InnerConfig(**out[key])
            except TypeError as exc:
                raise ConfigError(f"--atnas-set inner: {exc}") from None
    return out


# ---------------------------------------------------------------- evaluation


def adapted_acc(state: MetaState, encode: Encode, task: Task, inner: InnerConfig) -> float:
    w = adapt_encode(state.supernet, encode, task.support_x, task.support_y, task.way, inner)
    return score(encode, w, task.query_x, task.query_y)[0]


def halves(task: Task) -> tuple[torch.Tensor, torch.Tensor]:
    """Masks of two query halves with every class in both (alternate images of each class)."""
    a = torch.zeros(len(task.query_y), dtype=torch.bool)
    for c in range(task.way):
        rows = torch.nonzero(task.query_y == c).flatten()
        a[rows[::2]] = True
    return a, ~a


def oracle(
    state: MetaState,
    task: Task,
    chosen: Encode,
    best: Encode,
    cands: list[Encode],
    inner: InnerConfig,
) -> dict[str, float]:
    """Per-task selection headroom: the best candidate on query half A, scored on half B."""
    a, b = halves(task)
    scores = {}
    for e in {*cands, chosen, best}:
        w = adapt_encode(state.supernet, e, task.support_x, task.support_y, task.way, inner)
        scores[e] = (
            score(e, w, task.query_x[a], task.query_y[a])[0],
            score(e, w, task.query_x[b], task.query_y[b])[0],
        )
    pick = max(cands, key=lambda e: scores[e][0])
    return {
        "oracle_b": scores[pick][1],
        "search_b": scores[chosen][1],
        "meta_best_b": scores[best][1],
        "candidates": float(len(cands)),
    }


def best_member(state: MetaState, ok: Constraint | None) -> Encode:
    """The fittest member that meets ``ok`` (else the search's own fallback seed)."""
    ranked = [m.encode for m in state.ranked()]
    cfg = SearchConfig(population=1, seed_top=1)
    return seed_population(state.space, ranked, cfg, np.random.default_rng(0), ok)[0]


def part_eval(args: argparse.Namespace, key: str, seed: int, domain: str | None) -> dict[str, Any]:
    """Every method on the same tasks of one setting and seed; per-task accuracies."""
    torch.manual_seed(seed)
    val = pipeline.load_meta_images([args.data]).select(include=META_VAL)
    final = max(args.checkpoints)
    states = {n: MetaState.load(snapshot(args, n, seed, final))[0] for n in NETS}
    earlier = [m for m in sorted(args.checkpoints) if m != final]
    early = {
        (n, m): MetaState.load(snapshot(args, n, seed, m))[0]
        for n in ("atnas", "conv4_64")
        for m in earlier
    }
    way, shot = SETTINGS[key]
    sampler = TaskSampler(val, way, shot, 15)
    at = states["atnas"]
    inner = SearchConfig().final_inner or SearchConfig().inner
    image_size = 56 if domain == "px56" else 28
    cost = {n: arch_cost(at.space, conv4(int(n.split("_")[1])), image_size, way) for n in NETS[1:]}
    bounds = {f"le_c{n.split('_')[1]}": CostLimits(max_macs=cost[n].flops) for n in NETS[2:]}
    limits = {k: within(at.space, b, image_size, way) for k, b in bounds.items()}
    best = best_member(at, None)
    best_le = {k: best_member(at, ok) for k, ok in limits.items()}
    n_tasks = args.domain_tasks if domain else args.wide_tasks if way > 5 else args.tasks
    task_rng = np.random.default_rng(10_000 * seed + 1)
    gen = torch.Generator().manual_seed(seed)
    rows: list[dict[str, Any]] = []
    t_start = time.perf_counter()
    for i in range(n_tasks):
        task = shifted(sampler.sample(task_rng), domain, gen)
        sx, sy, qx, qy = task.support_x, task.support_y, task.query_x, task.query_y
        r: dict[str, Any] = {"acc": {}, "macs": {}, "params": {}, "seconds": {}, "encode": {}}
        acc = r["acc"]
        acc["pixel_centroid"] = pixel_centroid_acc(sx, sy, qx, qy, way)
        acc["proto_conv4_64"] = feature_prototype_acc(
            states["conv4_64"].supernet, conv4(64), sx, sy, qx, qy, way
        )
        acc["proto_meta_best"] = feature_prototype_acc(at.supernet, best, sx, sy, qx, qy, way)
        for n in NETS[1:]:
            acc[n] = adapted_acc(states[n], conv4(int(n.split("_")[1])), task, inner)
            r["macs"][n] = cost[n].flops
            r["params"][n] = cost[n].params
        acc["meta_best"] = adapted_acc(at, best, task, inner)
        best_cost = arch_cost(at.space, best, image_size, way)
        r["macs"]["meta_best"], r["params"]["meta_best"] = best_cost.flops, best_cost.params
        acc["conv4_on_supernet"] = adapted_acc(at, conv4(64), task, inner)
        for (n, m), st in early.items():
            e = best_member(st, None) if n == "atnas" else conv4(64)
            acc[f"{'meta_best' if n == 'atnas' else n}@{m:g}"] = adapted_acc(st, e, task, inner)
        if not args.no_search:
            for label, ok in [("atnas", None), *((f"atnas_{k}", v) for k, v in limits.items())]:
                if domain and label != "atnas":
                    continue
                # the search settings a search job would use (one net: adapt it, no search)
                bound = bounds.get(label.removeprefix("atnas_"))
                cfg = replace(search_defaults(at, bound), seed=seed * 100_000 + i)
                t0 = time.perf_counter()
                res = search(
                    at.supernet,
                    [m.encode for m in at.ranked()],
                    sx,
                    sy,
                    way,
                    cfg,
                    constraint=ok,
                    prior=at.prior(),
                )
                r["seconds"][label] = time.perf_counter() - t0
                acc[label] = score(res.encode, res.weights, qx, qy)[0]
                chosen = arch_cost(at.space, res.encode, image_size, way)
                r["macs"][label], r["params"][label] = chosen.flops, chosen.params
                r["encode"][label] = res.encode.key()
                r.setdefault("evaluations", {})[label] = res.evaluations
                if label == "atnas" and i < args.oracle_tasks and not domain:
                    r["oracle"] = oracle(at, task, res.encode, best, list(res.scored), inner)
            if not domain:
                for k, e in best_le.items():
                    acc[f"meta_best_{k}"] = adapted_acc(at, e, task, inner)
                    c = arch_cost(at.space, e, image_size, way)
                    r["macs"][f"meta_best_{k}"], r["params"][f"meta_best_{k}"] = c.flops, c.params
        t0 = time.perf_counter()
        adapt_encode(at.supernet, conv4(64), sx, sy, way, inner)
        r["seconds"]["adapt_conv4_64"] = time.perf_counter() - t0
        rows.append(r)
        if (i + 1) % 25 == 0:
            log.info(
                "%s s%d %s: %d/%d tasks, %.0fs",
                key,
                seed,
                domain or "",
                i + 1,
                n_tasks,
                time.perf_counter() - t_start,
            )
    return {
        "setting": key,
        "seed": seed,
        "domain": domain,
        "meta_best": best.key(),
        "meta_best_le": {k: e.key() for k, e in best_le.items()},
        "params": {
            **{n: cost[n].params for n in NETS[1:]},
            "meta_best": arch_cost(at.space, best, image_size, way).params,
        },
        "tasks": rows,
    }


def part_scratch(args: argparse.Namespace) -> dict[str, Any]:
    """Search from scratch (every candidate trained from random weights) vs a search job."""
    from atnas.evaluate import Method, evaluate

    val = pipeline.load_meta_images([args.data]).select(include=META_VAL)
    state, _ = MetaState.load(snapshot(args, "atnas", args.seeds[0], max(args.checkpoints)))
    sampler = TaskSampler(val, 5, 5, 15)
    cfg = SearchConfig()
    scratch = evaluate(
        state,
        sampler,
        args.scratch_tasks,
        Method.SCRATCH,
        cfg,
        seed=2000,
        scratch_inner=InnerConfig(args.scratch_steps, 0.1),
    )
    # what a search job runs on this supernet (one trained net: adapt it; else the search)
    ours = search_defaults(state)
    paired = evaluate(state, sampler, args.scratch_tasks, Method.ATNAS, ours, seed=2000)
    return {
        "scratch": scratch.to_json(),
        "atnas_same_tasks": paired.to_json(),
        "scratch_steps": args.scratch_steps,
        "speedup_median": scratch.median_seconds / paired.median_seconds,
    }


# ---------------------------------------------------------------- orchestration


def run_part(args: argparse.Namespace) -> int:
    torch.set_num_threads(1)
    kind, *rest = args.part.split(":")
    if kind == "meta":
        out = part_meta(args, rest[0], int(rest[1]))
    elif kind == "eval":
        out = part_eval(args, rest[0], int(rest[1]), rest[2] if len(rest) > 2 else None)
    else:
        out = part_scratch(args)
    part_file(args, args.part).write_text(json.dumps(out))
    return 0


def part_file(args: argparse.Namespace, part: str) -> Path:
    workdir: Path = args.workdir
    return workdir / f"{part.replace(':', '_')}.json"


class PartFailed(Exception):
    """A part's subprocess ended with an error (it printed why)."""


def made_with(args: argparse.Namespace, part: str) -> dict[str, Any]:
    """What a part's result depends on: ``--reuse`` keeps a part only when this is unchanged.

    Meta-training depends on the data and the checkpoints, AT-NAS's on the preset and its
    overrides, a fixed net's on its meta-rate (it trains in ``search64``'s space whatever the
    preset); the evaluations on everything else too (task counts, settings, domains, the fixed
    nets' rates, ...).
    """
    key: dict[str, Any] = {"data": str(args.data), "checkpoints": list(args.checkpoints)}
    if part.startswith("meta:conv4_"):  # a fixed net's training depends on its rate alone
        key["meta_lr"] = args.fixed_rates[int(part.split(":")[1].split("_")[1])]
        return key
    key |= {"preset": args.preset, "atnas_set": list(args.atnas_set)}
    if not part.startswith("meta:"):  # the evaluations, on every fixed net's rate and more
        key["fixed_rates"] = [[w, r] for w, r in sorted(args.fixed_rates.items())]
        argv, skip = [], False
        for a in args.passthrough:  # where results go and how many run at once change nothing
            if not skip and a.split("=")[0] not in ("--workdir", "--out", "--parallel"):
                argv.append(a)
            skip = not skip and a in ("--workdir", "--out", "--parallel")
        key["argv"] = argv
    return key


def fixed_rates(items: list[str]) -> dict[int, float]:
    """``--fixed-rates WIDTH=RATE ...`` over :data:`FIXED_RATES` (a one-line ConfigError)."""
    rates = dict(FIXED_RATES)
    for item in items:
        width, sep, rate = item.partition("=")
        if not sep or not width.isdigit() or int(width) not in FIXED_RATES:
            raise ConfigError(
                f"--fixed-rates takes WIDTH=RATE with WIDTH in {', '.join(map(str, FIXED_RATES))}, "
                f"not {item!r}"
            )
        try:
            value = float(rate)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value <= 0:
            raise ConfigError(f"--fixed-rates {width}: {rate!r} is not a positive number")
        rates[int(width)] = value
    return rates


def spawn(args: argparse.Namespace, part: str) -> dict[str, Any]:
    key, path = made_with(args, part), part_file(args, part)
    if args.reuse and path.is_file():
        try:
            out: dict[str, Any] = json.loads(path.read_text())
        except (OSError, ValueError):  # a part cut short: run it again
            out = {}
        if out.get("made_with") == key:
            return out
        log.info("%s: made with other arguments, running it again", part)
    cmd = [sys.executable, __file__, "--part", part, *args.passthrough]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    done = subprocess.run(cmd, env=env)
    if done.returncode != 0:
        raise PartFailed(f"part {part} failed (exit status {done.returncode})")
    out = json.loads(path.read_text())
    out["made_with"] = key
    path.write_text(json.dumps(out))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", type=Path, default=default_dataset(), help="Omniglot background zip")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument(
        "--checkpoints",
        type=float,
        nargs="+",
        default=[5.0, 10.0, 20.0],
        help="minutes of meta-training at which states are kept (the last is the budget)",
    )
    ap.add_argument("--tasks", type=int, default=200, help="tasks per setting and seed")
    ap.add_argument("--wide-tasks", type=int, default=200, help="20-way tasks per seed")
    ap.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    ap.add_argument("--oracle-tasks", type=int, default=50, help="tasks with the headroom study")
    ap.add_argument("--domains", nargs="*", default=[], choices=SHIFTS)
    ap.add_argument("--domain-tasks", type=int, default=100, help="5w1s tasks per domain, seed")
    ap.add_argument("--no-search", action="store_true", help="skip the per-task searches")
    ap.add_argument("--scratch-tasks", type=int, default=0, help="5w5s tasks, from scratch")
    ap.add_argument("--scratch-steps", type=int, default=100, help="SGD steps per candidate")
    ap.add_argument(
        "--preset",
        default="default",
        choices=sorted(PRESETS),
        help="the AT-NAS arm's preset (default: %(default)s, the product's)",
    )
    ap.add_argument("--atnas-set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument(
        "--fixed-rates",
        nargs="+",
        default=[],
        metavar="WIDTH=RATE",
        help="the fixed Conv-4s' meta-rates (default: "
        + " ".join(f"{w}={r:g}" for w, r in FIXED_RATES.items())
        + ")",
    )
    ap.add_argument("--parallel", type=int, default=2, help="parts at once (one thread each)")
    ap.add_argument("--workdir", type=Path, default=ROOT / "benchmarks" / "out" / "algorithm")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "algorithm.json")
    ap.add_argument("--reuse", action="store_true", help="keep parts already in the workdir")
    ap.add_argument("--part", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    if not args.data.is_file():
        print(
            f"bench: error: dataset {args.data} not found (--data or ATNAS_DATASETS)",
            file=sys.stderr,
        )
        return 2
    try:  # a bad --atnas-set fails here, in one line, before any work
        pipeline.meta_config(args.preset, **atnas_overrides(args))
    except ConfigError as exc:
        print(f"bench: error: --preset {args.preset}: {exc}", file=sys.stderr)
        return 2
    try:
        args.fixed_rates = fixed_rates(args.fixed_rates)
    except ConfigError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 2
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.part:
        try:
            return run_part(args)
        except AtnasError as exc:  # e.g. too few classes for the preset: the data's fault
            print(f"bench: error: {args.part}: {exc}", file=sys.stderr)
            return 2
    args.passthrough = [a for a in sys.argv[1:] if a != "--reuse"]
    started = time.time()
    metas = [f"meta:{n}:{s}" for s in args.seeds for n in NETS]
    evals = [f"eval:{k}:{s}" for s in args.seeds for k in args.settings]
    evals += [f"eval:5w1s:{s}:{d}" for s in args.seeds for d in args.domains]
    try:
        with ThreadPoolExecutor(args.parallel) as pool:
            meta_out = dict(zip(metas, pool.map(lambda p: spawn(args, p), metas), strict=True))
            parts = evals + (["scratch"] if args.scratch_tasks else [])
            eval_out = dict(zip(parts, pool.map(lambda p: spawn(args, p), parts), strict=True))
    except PartFailed as exc:  # the part said why on stderr, in one line
        print(f"bench: error: {exc}", file=sys.stderr)
        return 2
    report: dict[str, Any] = {
        "date": dt.date.today().isoformat(),
        "command": "python " + " ".join(sys.argv),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "torch": torch.__version__,
            "device": "cpu",
            "threads_per_part": 1,
            "parts_at_once": args.parallel,
        },
        "meta_minutes": max(args.checkpoints),
        "checkpoints": sorted(args.checkpoints),
        "atnas_overrides": {k: str(v) for k, v in atnas_overrides(args).items()},
        "fixed_rates": {f"conv4_{w}": r for w, r in sorted(args.fixed_rates.items())},
        "meta": meta_out,
        "evals": {k: v for k, v in eval_out.items() if k != "scratch"},
        "scratch": eval_out.get("scratch"),
    }
    report["summary"] = summarise(report)
    report["total_seconds"] = time.time() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report))
    for name, path in write_plots(report, args.out).items():
        log.info("accuracy vs MACs, %s: %s", name, path)
    print(markdown(report))
    return 0


def write_plots(report: dict[str, Any], out: Path) -> dict[str, Path]:
    """One SVG per setting and domain: accuracy against MACs of every costed method."""
    paths = {}
    for name, table in report["summary"].items():
        points = [
            (m, s["median_macs"], s["mean"], s["ci95"])
            for m, s in table.items()
            if not m.startswith("_") and s.get("median_macs")
        ]
        if points:
            path = out.with_name(f"{out.stem}-{name.replace('/', '-')}.svg")
            title = f"{name}: accuracy vs MACs ({report['meta_minutes']:g} min meta-training)"
            path.write_text(scatter(title, points))
            paths[name] = path
    return paths


# ---------------------------------------------------------------- report


BASE = {"atnas_le_c32": "conv4_32", "meta_best_le_c32": "conv4_32"}
BASE |= {"atnas_le_c16": "conv4_16", "meta_best_le_c16": "conv4_16"}


def summarise(report: dict[str, Any]) -> dict[str, Any]:
    """Per (setting or domain) and method: mean accuracy, paired difference to its baseline
    (Conv-4-64, or the fixed net of equal cost for constrained rows) with a 95% CI over every
    task of every seed, per-seed means, median MACs and time."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for part in report["evals"].values():
        name = part["setting"] + (f"/{part['domain']}" if part["domain"] else "")
        groups.setdefault(name, []).append(part)
    out: dict[str, Any] = {}
    for name, parts in groups.items():
        rows = [(p["seed"], t) for p in parts for t in p["tasks"]]
        methods = list(rows[0][1]["acc"])
        table = {}
        for m in methods:
            base = BASE.get(m, "conv4_64")
            acc = [t["acc"][m] for _, t in rows]
            diff = [t["acc"][m] - t["acc"][base] for _, t in rows]
            floors = [
                t["acc"][m] - max(t["acc"]["pixel_centroid"], t["acc"]["proto_conv4_64"])
                for _, t in rows
            ]
            per_seed = {
                str(s): float(np.mean([t["acc"][m] for ss, t in rows if ss == s]))
                for s in sorted({s for s, _ in rows})
            }
            macs = [t["macs"][m] for _, t in rows if m in t["macs"]]
            params = [t["params"][m] for _, t in rows if m in t.get("params", {})]
            secs = [t["seconds"][m] for _, t in rows if m in t["seconds"]]
            table[m] = {
                "tasks": len(acc),
                "mean": mean_ci(acc)[0],
                "ci95": mean_ci(acc)[1],
                "baseline": base,
                "diff": mean_ci(diff)[0],
                "diff_ci95": mean_ci(diff)[1],
                "above_best_floor": mean_ci(floors)[0],
                "per_seed": per_seed,
                "median_macs": float(np.median(macs)) if macs else None,
                "median_params": float(np.median(params)) if params else None,
                "median_seconds": float(np.median(secs)) if secs else None,
                "p95_seconds": float(np.percentile(secs, 95)) if secs else None,
            }
        orc = [t["oracle"] for _, t in rows if "oracle" in t]
        if orc:
            head = [o["oracle_b"] - o["meta_best_b"] for o in orc]
            gain = [o["search_b"] - o["meta_best_b"] for o in orc]
            table["_oracle"] = {
                "tasks": len(orc),
                "headroom": mean_ci(head)[0],
                "headroom_ci95": mean_ci(head)[1],
                "search_gain": mean_ci(gain)[0],
                "search_gain_ci95": mean_ci(gain)[1],
                "captured_share": (float(np.mean(gain)) / float(np.mean(head)))
                if np.mean(head) > 0
                else None,
            }
        out[name] = table
    return out


def markdown(r: dict[str, Any]) -> str:
    lines = [
        f"Run {r['date']}: `{r['command']}` on {r['machine']['platform']}, "
        f"{r['machine']['cpus']} CPUs, torch {r['machine']['torch']}, CPU only; one torch "
        f"thread per part, {r['machine']['parts_at_once']} parts at once.",
        "",
        "| run | iterations | it/s | best encode |",
        "| --- | --- | --- | --- |",
    ]
    for k, m in r["meta"].items():
        lines.append(
            f"| {k} | {m['iterations']} | {m['iterations_per_second']:.2f} | `{m['best_encode']}` |"
        )
    for name, table in r["summary"].items():
        lines += [
            "",
            f"**{name}** (paired over every task of every seed; diff = method − baseline)",
            "",
            "| method | tasks | acc % (95% CI) | baseline | diff pts (95% CI) "
            "| above best floor | MACs | params | median s |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for m, s in table.items():
            if m.startswith("_"):
                continue
            macs = "" if s["median_macs"] is None else f"{s['median_macs'] / 1e6:.2f}M"
            secs = "" if s["median_seconds"] is None else f"{s['median_seconds']:.2f}"
            par = s.get("median_params")
            params = "" if par is None else f"{par / 1e3:.0f}k"
            lines.append(
                f"| {m} | {s['tasks']} | {100 * s['mean']:.2f} ± {100 * s['ci95']:.2f} | "
                f"{s['baseline']} | {100 * s['diff']:+.2f} ± {100 * s['diff_ci95']:.2f} | "
                f"{100 * s['above_best_floor']:+.2f} | {macs} | {params} | {secs} |"
            )
        if "_oracle" in table:
            o = table["_oracle"]
            share = "n/a" if o["captured_share"] is None else f"{100 * o['captured_share']:.0f}%"
            lines += [
                "",
                f"Oracle headroom over meta_best ({o['tasks']} tasks, query half B): "
                f"{100 * o['headroom']:+.2f} ± {100 * o['headroom_ci95']:.2f} pts; search gain "
                f"{100 * o['search_gain']:+.2f} ± {100 * o['search_gain_ci95']:.2f} pts; "
                f"captured {share}.",
            ]
    if r.get("scratch"):
        sc = r["scratch"]
        lines += [
            "",
            f"Scratch (5w5s, {sc['scratch']['tasks']} tasks): "
            f"{100 * sc['scratch']['mean_acc']:.1f}% "
            f"in {sc['scratch']['median_seconds']:.1f}s vs AT-NAS "
            f"{100 * sc['atnas_same_tasks']['mean_acc']:.1f}% in "
            f"{sc['atnas_same_tasks']['median_seconds']:.2f}s: {sc['speedup_median']:.1f}x.",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
