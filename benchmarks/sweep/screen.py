"""A quick design screen on the meta-validation alphabets: train arms, then score them paired.

``train`` meta-trains one arm for SECONDS (one torch thread; run two at a time on 2 cores) with
MetaTrainConfig overrides as JSON (plus ``"conv4": W`` for a fixed Conv-4 of width W,
``"fixed": [W1, W2, ...]`` for a fixed chain of conv3x3 layers of those widths (an item
``"op:W"`` names another op of :mod:`atnas.ops`, e.g. ``"sepconv3x3:64"``), and
``"widths": [...]`` for a slimmable space of those widths) and saves it to ``--dir``. ``eval``
adapts every named arm's best encode (and the Conv-4 path of each supernet, as ``NAME/c4``)
on the same 5w1s and 20w1s tasks and prints each arm's paired difference to the first.

The focus screen of 2026-11-27 (docs/benchmarks.md, "Issue 6, round 2"):

    python benchmarks/sweep/screen.py train c64 240 '{"conv4": 64}' &
    python benchmarks/sweep/screen.py train c32 240 '{"conv4": 32}'; wait
    python benchmarks/sweep/screen.py train def 240 '{"focus": 0, "final_tasks": 0}' &
    python benchmarks/sweep/screen.py train foc70 240 '{"focus": 0.7, "final_tasks": 24}'; wait
    python benchmarks/sweep/screen.py eval c64,c32,def,foc70 150

The 10-minute, 3-seed screen of round 3 (docs/benchmarks.md, "Issue 6, round 3"), which set
the default focus to 0.85 (arms two at a time, one torch thread each; about 1 h 40 min):

    for s in 0 1 2; do
      python benchmarks/sweep/screen.py train c64_s$s 600 '{"conv4": 64}' --seed $s &
      python benchmarks/sweep/screen.py train foc_s$s 600 '{"focus": 0.7}' --seed $s; wait
      python benchmarks/sweep/screen.py train c32_s$s 600 '{"conv4": 32}' --seed $s &
      python benchmarks/sweep/screen.py train fru_s$s 600 \
          '{"focus": 0.85, "final_pick": "frugal"}' --seed $s; wait
    done
    python benchmarks/sweep/screen.py train f85_s0 600 '{"focus": 0.85}' --seed 0 &
    python benchmarks/sweep/screen.py train f85_s1 600 '{"focus": 0.85}' --seed 1; wait
    python benchmarks/sweep/screen.py train f85_s2 600 '{"focus": 0.85}' --seed 2
    python benchmarks/sweep/screen.py eval c64,c32,foc,f85,fru 200 --seeds 0 1 2 \
        --out docs/results/screen-2026-11-27.json

(``foc`` ran as ``'{}'``, the default preset of the time, i.e. focus 0.7. Arms are built on the
``search64`` preset, the default until 2026-12-04: ``'{}'`` is that preset's search, and
``{"fixed": ...}`` / ``{"conv4": ...}`` train one net in its space or a wider one.)

Round 4 (20-minute budgets, 3 seeds, ``final_widen``): the commands are in docs/benchmarks.md,
"Issue 6, round 4"; ``pool`` pairs arms evaluated in separate ``eval`` runs (same seeds, same
task counts), e.g. round 3's seed 0 with later seeds.

The probe check of 2026-11-27 (docs/benchmarks.md, "Issue 6, round 5"): with ``--probe`` both
``train`` and ``eval`` leave the 5 :data:`PROBE` alphabets out of meta-training and evaluate on
them, alphabets that no setting was ever tuned on (about 1 h 45 min)::

    S="python benchmarks/sweep/screen.py --probe"
    for s in 0 1 2; do
      $S train pc64_s$s 600 '{"conv4": 64}' --seed $s & $S train pdef_s$s 600 '{}' --seed $s; wait
    done
    for s in 0 1; do
      $S train p20c64_s$s 1200 '{"conv4": 64}' --seed $s &
      $S train p20def_s$s 1200 '{}' --seed $s; wait
    done
    $S eval pc64,pdef 200 --seeds 0 1 2 --out docs/results/probe10-2026-11-27.json &
    $S eval p20c64,p20def 200 --seeds 0 1 --out docs/results/probe20-2026-11-27.json; wait

(a third 20-minute seed ran later and was pooled: docs/benchmarks.md, "Issue 6, round 5").
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/ (algorithm.py)
from algorithm import META_VAL, adapted_acc, conv4, default_dataset
from domains import DOMAINS, SHIFTS, digits_images, shifted

from atnas import pipeline
from atnas.cost import arch_cost
from atnas.data import ImageSet
from atnas.errors import AtnasError
from atnas.evaluate import mean_ci
from atnas.fitness import adapt_encode
from atnas.floors import (
    accuracy,
    check_pixel_floor,
    feature_prototype_acc,
    fused_acc,
    pixel_centroid_acc,
)
from atnas.learner import InnerConfig
from atnas.metastate import MetaState, Progress
from atnas.ops import OPS
from atnas.presets import PRESETS
from atnas.search import SearchConfig
from atnas.space import DEFAULT_WIDTHS, Encode, LayerChoice, SearchSpace
from atnas.supernet import logits
from atnas.tasks import TaskSampler

#: Alphabets never used to tune anything: every fifth of the 25 meta-train alphabets in sorted
#: order (a rule fixed before any run). With ``--probe`` they leave meta-training and become the
#: evaluation alphabets, a check that a gain on the tuning alphabets (META_VAL) is not tuned-in.
PROBE = [
    "Alphabet_of_the_Magi",
    "Blackfoot_(Canadian_Aboriginal_Syllabics)",
    "Futurama",
    "Japanese_(hiragana)",
    "N_Ko",
]


def fixed_layers(items: Any) -> tuple[LayerChoice, ...]:
    """``"fixed"``'s layers: a width is a conv3x3 layer, ``"op:width"`` names its op."""
    if not isinstance(items, list) or not items:
        raise SystemExit('"fixed" must be a non-empty list of widths or "op:width" strings')
    layers = []
    for item in items:
        op, _, width = str(item).rpartition(":")
        if not width.isdigit() or int(width) < 1 or (op and op not in OPS):
            raise SystemExit(f'"fixed": {item!r} is not a width or "op:width" (ops: {sorted(OPS)})')
        layers.append(LayerChoice(op or "conv3x3", int(width)))
    return tuple(layers)


def train(args: argparse.Namespace) -> None:
    over: dict[str, Any] = json.loads(args.overrides)
    if "inner" in over:
        over["inner"] = InnerConfig(**over["inner"])
    if "conv4" in over:
        over["fixed_encode"] = conv4(over.pop("conv4"))
    preset = "search64"
    ops: tuple[str, ...] = ("conv3x3",)
    num_layers = PRESETS["search64"].space.num_layers
    if "fixed" in over:  # a fixed chain of layers: widths (conv3x3) or "op:width"
        layers = fixed_layers(over.pop("fixed"))
        over["fixed_encode"] = Encode(layers)
        widths = {c.width for c in layers}
        ops += tuple(sorted({c.op for c in layers} - set(ops)))
        num_layers = len(layers)  # a deeper or shallower chain than the preset's
        over.setdefault("widths", sorted(widths | set(DEFAULT_WIDTHS)))
    if "widths" in over:
        space = SearchSpace(num_layers=num_layers, ops=ops, widths=tuple(over.pop("widths")))
        PRESETS["screen"] = dataclasses.replace(PRESETS["search64"], space=space)
        preset = "screen"
    held_out = META_VAL + PROBE if args.probe else META_VAL
    images = pipeline.load_meta_images([args.data]).select(exclude=held_out)
    if args.snap and (
        "fixed_encode" not in over or over.get("meta_lr_schedule", "constant") != "constant"
    ):
        # A search's focus phase and an annealed rate depend on the budget: a snapshot of
        # such a run is not a shorter run.
        raise SystemExit("--snap is for fixed nets at a constant meta-rate")
    snaps = sorted(snap_arg(s) for s in args.snap)
    args.dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    trainer = pipeline.meta_trainer(
        images,
        preset,
        budget_seconds=args.seconds,
        iterations=None,
        seed=args.seed,
        device=torch.device("cpu"),
        **over,
    )

    def on_progress(p: Progress) -> None:
        # A snapshot of the run as it stood at SECONDS: for a fixed net at a constant rate,
        # the same as a run with that budget (nothing else in the loop reads the budget).
        while snaps and p.elapsed >= snaps[0][0]:
            at, name = snaps.pop(0)
            trainer.state.save(args.dir / f"{name}.pt")
            print(json.dumps({"snapshot": name, "at": at, "iterations": p.iteration}), flush=True)

    state = trainer.run(on_progress, None, None)
    state.save(args.dir / f"{args.name}.pt")
    rounds = [(h.get("kind"), h["iteration"], h["best_encode"]) for h in state.ea_history[-2:]]
    print(
        json.dumps(
            {
                "name": args.name,
                "iterations": state.iteration,
                "seconds": round(time.time() - t0),
                "best": state.best_encode().key(),
                "last_rounds": rounds,
            }
        ),
        flush=True,
    )


def chain(widths: str) -> Encode:
    """A chain of conv3x3 layers of these comma-separated widths (``eval --also``)."""
    try:
        return Encode(tuple(LayerChoice("conv3x3", int(w)) for w in widths.split(",")))
    except ValueError:
        raise SystemExit(f"--also takes [ARM=]W1,W2,.. (whole numbers), got {widths!r}") from None


def snap_arg(text: str) -> tuple[float, str]:
    """``SECONDS:NAME`` of ``train --snap``."""
    at, sep, name = text.partition(":")
    try:
        seconds = float(at)
    except ValueError:
        seconds = -1.0
    if not sep or not name or not seconds > 0:
        raise SystemExit(f"--snap takes SECONDS:NAME, got {text!r}")
    return seconds, name


def eval_images(args: argparse.Namespace, image_size: int) -> ImageSet:
    """The evaluation classes: the probe or tuning alphabets, or the digits of ``--domain``."""
    if args.domain == "digits":
        digits: ImageSet = digits_images(image_size)
        return digits
    return pipeline.load_meta_images([args.data]).select(include=PROBE if args.probe else META_VAL)


def variants(spec: str | None) -> dict[str, InnerConfig]:
    """``--variants`` JSON ({label: InnerConfig fields}) over the evaluation's inner loop."""
    base = SearchConfig().final_inner or SearchConfig().inner
    try:
        raw = json.loads(spec) if spec else {}
        return {k: dataclasses.replace(base, **v) for k, v in raw.items()}
    except (json.JSONDecodeError, TypeError, AttributeError) as e:
        raise SystemExit(f"screen: error: --variants: {e}") from None


def evaluate(args: argparse.Namespace) -> None:
    names = args.names.split(",")
    inner = SearchConfig().final_inner or SearchConfig().inner
    extra = variants(args.variants)
    seeds: list[int | None] = list(args.seeds) if args.seeds else [None]
    report: dict[str, Any] = {"names": names, "seeds": seeds, "encodes": {}, "settings": {}}
    report["alphabets"] = PROBE if args.probe else META_VAL
    report["domain"] = args.domain
    report["variants"] = {k: dataclasses.asdict(v) for k, v in extra.items()}
    ways = [(5, args.tasks)] if 5 in args.ways else []
    if 20 in args.ways and args.domain != "digits":  # 10 classes: no 20-way tasks
        ways.append((20, args.tasks // 3))
    val: ImageSet | None = None
    for way, n_tasks in ways:
        accs: dict[str, list[float]] = {}
        task_seed: list[int | None] = []
        for seed in seeds:
            suffix = "" if seed is None else f"_s{seed}"
            states = {n: MetaState.load(args.dir / f"{n}{suffix}.pt")[0] for n in names}
            if val is None:
                val = eval_images(args, next(iter(states.values())).config.image_size)
            if way == 5:
                for n, st in states.items():
                    enc = st.best_encode()
                    macs = arch_cost(st.space, enc, st.config.image_size, 5).flops
                    report["encodes"][f"{n}{suffix}"] = {"encode": enc.key(), "macs": macs}
                    print(f"seed {seed} {n}: {enc.key()} ({macs / 1e6:.2f}M MACs)")
            sampler = TaskSampler(val, way, args.shot, 15)
            rng = np.random.default_rng(12345 + (seed or 0))
            gen = torch.Generator().manual_seed(777 + (seed or 0))
            for _ in range(n_tasks):
                task = sampler.sample(rng)
                if args.domain in SHIFTS:
                    task = shifted(task, args.domain, gen)
                task_seed.append(seed)
                if args.floors:
                    accs.setdefault("pixel", []).append(
                        pixel_centroid_acc(
                            task.support_x, task.support_y, task.query_x, task.query_y, way
                        )
                    )
                for n, st in states.items():
                    best = st.best_encode()
                    if args.fuse:  # the subnet's and the pixels' experts multiplied
                        w = adapt_encode(
                            st.supernet, best, task.support_x, task.support_y, way, inner
                        )
                        with torch.no_grad():
                            out = logits(task.query_x, best, w)
                        acc = accuracy(out, task.query_y)
                        for f in args.fuse:
                            hit = fused_acc(
                                out,
                                task.support_x,
                                task.support_y,
                                task.query_x,
                                task.query_y,
                                way,
                                f,
                            )
                            accs.setdefault(f"{n}~{f:g}", []).append(hit)
                    else:
                        acc = adapted_acc(st, best, task, inner)
                    accs.setdefault(n, []).append(acc)
                    if args.fallback:  # what a search job ships: the subnet or the pixels
                        check = check_pixel_floor(
                            st.supernet, best, task.support_x, task.support_y, way, inner
                        )
                        if check is not None and check.use_pixels:
                            acc = pixel_centroid_acc(
                                task.support_x, task.support_y, task.query_x, task.query_y, way
                            )
                        accs.setdefault(f"{n}+fb", []).append(acc)
                        used = check is not None and check.use_pixels
                        accs.setdefault(f"{n}+fb_used", []).append(float(used))
                        for f in args.fuse:  # the check choosing among subnet, fused, pixels
                            check = check_pixel_floor(
                                st.supernet,
                                best,
                                task.support_x,
                                task.support_y,
                                way,
                                inner,
                                also_fused=f,
                            )
                            choice = "model" if check is None else check.choice
                            chosen = {
                                "model": accs[n][-1],
                                "fused": accs[f"{n}~{f:g}"][-1],
                            }.get(choice)
                            acc = (
                                chosen
                                if chosen is not None
                                else pixel_centroid_acc(  # the pixels
                                    task.support_x, task.support_y, task.query_x, task.query_y, way
                                )
                            )
                            accs.setdefault(f"{n}~{f:g}+fb3", []).append(acc)
                            for c in ("fused", "pixels"):
                                accs.setdefault(f"{n}~{f:g}+fb3_{c}", []).append(float(choice == c))
                    for label, var in extra.items():
                        accs.setdefault(f"{n}@{label}", []).append(adapted_acc(st, best, task, var))
                    if args.floors:
                        accs.setdefault(f"{n}/proto", []).append(
                            feature_prototype_acc(
                                st.supernet,
                                best,
                                task.support_x,
                                task.support_y,
                                task.query_x,
                                task.query_y,
                                way,
                            )
                        )
                    for also in args.also:  # a fixed net of the arm's supernet, as is
                        arm, _, widths = also.rpartition("=")
                        if arm in ("", n):
                            acc = adapted_acc(st, chain(widths), task, inner)
                            accs.setdefault(f"{n}/{widths}", []).append(acc)
                    if st.config.fixed_encode is None and not args.no_c4:
                        c4 = st.space.conv4()
                        accs.setdefault(f"{n}/c4", []).append(adapted_acc(st, c4, task, inner))
        if not accs:  # no tasks asked for (e.g. only --scratch)
            continue
        setting = f"{way}w{args.shot}s"
        report["settings"][setting] = {"task_seed": task_seed, "acc": accs}
        compare(setting, accs, task_seed, names, seeds)
    if args.scratch and val is not None:
        report["scratch"] = scratch(args, names, seeds, val)
    if args.out is not None:
        args.out.write_text(json.dumps(report))


def scratch(
    args: argparse.Namespace, names: list[str], seeds: list[int | None], val: ImageSet
) -> dict[str, Any]:
    """The search job of the first AT-NAS arm (first seed) against the same search with every
    candidate trained from random weights, on ``--scratch`` 5w5s tasks: accuracy and median
    seconds of each, and the speed-up (scratch seconds / AT-NAS seconds)."""
    from atnas.evaluate import Method
    from atnas.evaluate import evaluate as run_method

    suffix = "" if seeds[0] is None else f"_s{seeds[0]}"
    states = [MetaState.load(args.dir / f"{n}{suffix}.pt")[0] for n in names]
    state = states[0]  # the first arm: a search, or a fixed net (as the default preset trains)
    sampler = TaskSampler(val, 5, 5, 15)
    cfg = SearchConfig()
    steps = InnerConfig(args.scratch_steps, 0.1)
    out = run_method(state, sampler, args.scratch, Method.SCRATCH, cfg, 2000, steps)
    # what a search job runs on this supernet (a focused one: adapt the focused net), and the
    # full search that the scratch run mirrors
    ours = run_method(
        state, sampler, args.scratch, Method.ATNAS, pipeline.search_defaults(state), 2000
    )
    full = run_method(state, sampler, args.scratch, Method.ATNAS, cfg, seed=2000)
    # the pixel-floor check a search job adds at >= 2 shots, timed on the same tasks
    inner = cfg.final_inner or cfg.inner
    # (stopping once the verdict cannot change, and adapting all 3 folds, on the same tasks)
    task_rng = np.random.default_rng(2000)
    check_secs: list[float] = []
    all_folds_secs: list[float] = []
    verdicts_agree = True
    for _ in range(args.scratch):
        task = sampler.sample(task_rng)
        checks = []
        for stop_early, secs in ((True, check_secs), (False, all_folds_secs)):
            t0 = time.perf_counter()
            checks.append(
                check_pixel_floor(
                    state.supernet,
                    state.best_encode(),
                    task.support_x,
                    task.support_y,
                    5,
                    inner,
                    stop_early=stop_early,
                )
            )
            secs.append(time.perf_counter() - t0)
        early, full_check = checks
        assert early is not None and full_check is not None
        verdicts_agree &= early.use_pixels == full_check.use_pixels
    result = {
        "pixel_check_median_seconds": float(np.median(check_secs)),
        "pixel_check_all_folds_median_seconds": float(np.median(all_folds_secs)),
        "pixel_check_verdicts_agree": verdicts_agree,
        "search_job_with_check_median_seconds": ours.median_seconds + float(np.median(check_secs)),
        "scratch": out.to_json(),
        "atnas": ours.to_json(),
        "atnas_full_search": full.to_json(),
        "scratch_steps": args.scratch_steps,
        "speedup_median": out.median_seconds / ours.median_seconds,
        "speedup_median_full_search": out.median_seconds / full.median_seconds,
        "speedup_median_with_check": out.median_seconds
        / (ours.median_seconds + float(np.median(check_secs))),
    }
    print(
        f"5w5s, {args.scratch} tasks: scratch search {100 * out.mean_acc:.1f}% in "
        f"{out.median_seconds:.2f} s (median); AT-NAS search job {100 * ours.mean_acc:.1f}% in "
        f"{ours.median_seconds:.2f} s ({result['speedup_median']:.0f}x); AT-NAS full search "
        f"{100 * full.mean_acc:.1f}% in {full.median_seconds:.2f} s "
        f"({result['speedup_median_full_search']:.0f}x); the pixel-floor check "
        f"{result['pixel_check_median_seconds']:.2f} s (all 3 folds "
        f"{result['pixel_check_all_folds_median_seconds']:.2f} s), search job + check "
        f"{result['speedup_median_with_check']:.1f}x"
    )
    return result


def compare(
    setting: str,
    accs: dict[str, list[float]],
    task_seed: list[int | None],
    names: list[str],
    seeds: list[int | None],
) -> None:
    """Prints every arm's paired difference to each of the first two arms (per seed too)."""
    print(f"{setting}, {len(accs[names[0]])} tasks; paired difference to {names[0]}")
    for ref_name in names[:2]:
        ref = np.asarray(accs[ref_name])
        print(f"  vs {ref_name}" + ("" if len(seeds) == 1 else "  (per seed)"))
        for n, a in accs.items():
            d = np.asarray(a) - ref
            ci = 100 * mean_ci(list(d))[1]
            mean = 100 * np.mean(a)
            per_seed = ""
            if len(seeds) > 1:
                where = np.asarray(task_seed)
                per_seed = (
                    "  (" + ", ".join(f"{100 * d[where == s].mean():+.2f}" for s in seeds) + ")"
                )
            print(f"    {n:24s} {mean:6.2f}  diff {100 * d.mean():+6.2f} ± {ci:.2f}{per_seed}")


def pool(args: argparse.Namespace) -> None:
    """Pairs arms across ``eval --out`` reports: an arm's tasks of seed s in one report are
    the tasks of seed s in any other (same count, same seed), so runs evaluated in separate
    sessions pair task by task. Only the seeds every named arm has are kept. ``--rename
    OLD=NEW`` reads arm OLD as NEW, so that one method's runs under different names (e.g. two
    rounds on different seeds) join one column."""
    names = args.names.split(",")
    renames = dict(_rename(r) for r in args.rename)
    per: dict[str, dict[str, dict[int | None, list[float]]]] = {}
    report: dict[str, Any] = {"names": names, "encodes": {}, "settings": {}, "from": []}
    for path in args.reports:
        data = json.loads(path.read_text())
        if not isinstance(data, dict) or not isinstance(data.get("settings"), dict):
            raise SystemExit(f"screen: error: {path} is not an eval --out report (no settings)")
        report["from"].append(path.name)
        report["encodes"].update(data["encodes"])
        for setting, block in data["settings"].items():
            for n, a in block["acc"].items():
                by_seed = per.setdefault(setting, {}).setdefault(renames.get(n, n), {})
                for seed, acc in zip(block["task_seed"], a, strict=True):
                    by_seed.setdefault(seed, []).append(acc)
    for setting, arms in per.items():
        missing = [n for n in names if n not in arms]
        if missing:
            raise SystemExit(f"{setting}: no tasks for {missing} in these reports")
        seeds = sorted(set.intersection(*(set(arms[n]) for n in names)), key=lambda s: s or 0)
        for seed in seeds:
            counts = {len(arms[n][seed]) for n in names}
            if len(counts) != 1:
                raise SystemExit(f"{setting}, seed {seed}: arms have different task counts")
        accs = {n: [a for seed in seeds for a in arms[n][seed]] for n in names}
        task_seed = [seed for seed in seeds for _ in arms[names[0]][seed]]
        report["seeds"] = seeds
        report["settings"][setting] = {"task_seed": task_seed, "acc": accs}
        compare(setting, accs, task_seed, names, list(seeds))
    if args.out is not None:
        args.out.write_text(json.dumps(report))


def _rename(spec: str) -> tuple[str, str]:
    """``OLD=NEW`` as a pair; anything else stops with one line."""
    old, sep, new = spec.partition("=")
    if not sep or not old or not new:
        raise SystemExit(f"screen: error: --rename wants OLD=NEW, got {spec!r}")
    return old, new


def diff(args: argparse.Namespace) -> None:
    """Paired difference of two columns of an ``eval --out`` report (e.g. two inner loops),
    per setting, with its 95% CI and per seed. A column may join arms with ``+``: the per-task
    mean of replicate runs of one method (e.g. the same protocol run in two rounds, pooled
    with ``pool``), so that the difference is that of the methods, not of one run each.

    The task-level CI counts tasks, not training runs. A second line treats each training
    run as the unit: one difference per (replicate, seed), the replicates paired by their
    position in ``a`` and ``b`` (a column of one arm is reused for every replicate of the
    other), with a Student-t 95% interval over those run-level differences."""
    data = json.loads(args.report.read_text())
    if not isinstance(data, dict) or not isinstance(data.get("settings"), dict):
        raise SystemExit(f"screen: error: {args.report} is not an eval --out report (no settings)")
    for setting, block in data["settings"].items():
        if not isinstance(block, dict) or not block.get("task_seed"):
            raise SystemExit(f"screen: error: {setting}: no tasks in {args.report}")
        a_runs = _runs(block["acc"], args.a, setting)
        b_runs = _runs(block["acc"], args.b, setting)
        a, b = np.mean(a_runs, axis=0), np.mean(b_runs, axis=0)
        d, where = a - b, np.asarray(block["task_seed"], dtype=object)
        if len(d) != len(where):
            raise SystemExit(f"{setting}: {len(d)} accuracies but {len(where)} task seeds")
        ci = 100 * mean_ci(list(d))[1]
        seeds = list(dict.fromkeys(block["task_seed"]))
        per = ", ".join(f"{100 * d[where == s].mean():+.2f}" for s in seeds)
        print(
            f"{setting} ({len(d)} tasks): {args.a} {100 * a.mean():.2f} - {args.b} "
            f"{100 * b.mean():.2f} = {100 * d.mean():+.2f} ± {ci:.2f}  (per seed {per})"
        )
        print("  " + _run_level(a_runs, b_runs, where, seeds))


def _runs(acc: dict[str, list[float]], spec: str, setting: str) -> np.ndarray:
    """Per-task accuracies of ``spec``'s arms, one row per arm (``+`` joins replicate runs)."""
    arms = spec.split("+")
    missing = [c for c in arms if c not in acc]
    if missing:
        raise SystemExit(f"{setting}: no column {missing}; have {sorted(acc)}")
    if len({len(acc[c]) for c in arms}) != 1:
        raise SystemExit(f"{setting}: arms {arms} have different task counts")
    return np.asarray([acc[c] for c in arms], dtype=float)


def _run_level(a: np.ndarray, b: np.ndarray, where: np.ndarray, seeds: list[Any]) -> str:
    """One difference per training run (replicate × seed) and a t interval over them."""
    if len(a) != len(b) and 1 not in (len(a), len(b)):
        return f"runs: not paired ({len(a)} replicates against {len(b)})"
    k = max(len(a), len(b))
    diffs = [
        100 * (a[min(i, len(a) - 1)][where == s] - b[min(i, len(b) - 1)][where == s]).mean()
        for i in range(k)
        for s in seeds
    ]
    if len(diffs) < 2:
        return "runs: 1 training run per method, no run-level interval"
    half = _t975(len(diffs) - 1) * float(np.std(diffs, ddof=1)) / np.sqrt(len(diffs))
    listed = ", ".join(f"{x:+.2f}" for x in diffs)
    runs = f"runs ({len(diffs)} = {k} x {len(seeds)} seeds)"
    return f"{runs}: {np.mean(diffs):+.2f} ± {half:.2f} (t)  [{listed}]"


# Student-t 0.975 quantiles for 1-30 degrees of freedom (standard tables)
# fmt: off
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
         2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
         2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)
# fmt: on


def _t975(df: int) -> float:
    """The 97.5% Student-t quantile (two-sided 95%); Cornish-Fisher beyond the table."""
    if df <= len(_T975):
        return _T975[df - 1]
    z = 1.959964
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def main() -> None:
    torch.set_num_threads(1)
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", type=Path, default=default_dataset())
    ap.add_argument("--dir", type=Path, default=Path("benchmarks/out/screen"))
    ap.add_argument(
        "--probe",
        action="store_true",
        help="train without the PROBE alphabets and evaluate on them (not the tuning ones)",
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("name")
    t.add_argument("seconds", type=float)
    t.add_argument("overrides", nargs="?", default="{}")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument(
        "--snap",
        action="append",
        default=[],
        metavar="SECONDS:NAME",
        help="also save the run as it stood at SECONDS as NAME (fixed nets: G's 10-of-20 minutes)",
    )
    e = sub.add_parser("eval")
    e.add_argument("names", help="comma-separated arms; the first is the baseline")
    e.add_argument("tasks", type=int, nargs="?", default=150)
    e.add_argument("--seeds", type=int, nargs="*", help="pool arms saved as NAME_sSEED.pt")
    e.add_argument("--out", type=Path, default=None, help="per-task accuracies as JSON")
    e.add_argument(
        "--domain", choices=DOMAINS, help="shift the tasks, or draw them from the 8x8 digits"
    )
    e.add_argument(
        "--variants",
        help="more inner loops for every arm, as JSON {label: InnerConfig fields}, e.g. "
        '\'{"proto": {"head": "proto"}}\' (scored as NAME@label)',
    )
    e.add_argument(
        "--floors",
        action="store_true",
        help="also score nearest centroid on pixels (pixel) and on each arm's features "
        "(NAME/proto)",
    )
    e.add_argument("--no-c4", action="store_true", help="skip the Conv-4 path of supernets")
    e.add_argument(
        "--also",
        action="append",
        default=[],
        metavar="[ARM=]W1,W2,..",
        help="also adapt this conv3x3 chain on every arm's supernet (or ARM's only), as "
        "NAME/W1,W2,.. (e.g. the Conv-4/32 slice of a net trained alone)",
    )
    e.add_argument(
        "--fallback",
        action="store_true",
        help="also score what a search job ships (NAME+fb): the pixel centroid where it beat "
        "the subnet on held-out support images (>= 2 shots), and how often (NAME+fb_used)",
    )
    e.add_argument(
        "--fuse",
        type=float,
        nargs="*",
        default=[],
        help="also score the subnet's log-probabilities plus W times the pixel centroid's "
        "(NAME~W), for each weight W",
    )
    e.add_argument("--shot", type=int, default=1, help="support images per class")
    e.add_argument(
        "--ways", type=int, nargs="+", choices=[5, 20], default=[5, 20], help="task sizes"
    )
    e.add_argument("--scratch", type=int, default=0, help="5w5s tasks of the scratch search")
    e.add_argument("--scratch-steps", type=int, default=100, help="SGD steps per candidate")
    p = sub.add_parser("pool", help="pair arms across eval reports (e.g. seeds run apart)")
    p.add_argument("names", help="comma-separated arms; the first is the baseline")
    p.add_argument("reports", type=Path, nargs="+", help="eval --out files")
    p.add_argument("--out", type=Path, default=None, help="the pooled per-task accuracies")
    p.add_argument(
        "--rename",
        action="append",
        default=[],
        metavar="OLD=NEW",
        help="read arm OLD as NEW (one method's runs under two names join one column)",
    )
    d = sub.add_parser("diff", help="paired difference of two columns of one eval report")
    d.add_argument("report", type=Path)
    d.add_argument("a", help="an arm, or arms joined with + (the mean of replicate runs)")
    d.add_argument("b", help="the arm subtracted (or arms joined with +)")
    args = ap.parse_args()
    commands = {"diff": diff, "train": train, "pool": pool, "eval": evaluate}
    try:
        commands[args.cmd](args)
    except (AtnasError, OSError, json.JSONDecodeError, KeyError) as e:  # one line, no trace
        raise SystemExit(f"screen: error: {type(e).__name__}: {e}") from None


if __name__ == "__main__":
    main()
