"""``atnas meta-train``, ``atnas search`` and ``atnas evaluate``: the algorithm, no service."""

from __future__ import annotations

import argparse
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from atnas import pipeline
from atnas.data import ImageConfig, load_task
from atnas.errors import ConfigError
from atnas.evaluate import Method, evaluate
from atnas.export import write_json
from atnas.learner import InnerConfig
from atnas.limits import CostLimits, check_feasible
from atnas.meta import MetaAlgorithm
from atnas.metastate import FINAL_PICKS, WIDEN_LIMITS
from atnas.metatrain import MetaState, Progress
from atnas.presets import PRESETS, get_preset
from atnas.search import Generation, SearchConfig
from atnas.space import Encode
from atnas.tasks import TaskSampler
from atnas_cli import constraints
from atnas_cli.output import emit

log = logging.getLogger("atnas")


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Registers the local sub-commands."""
    p = sub.add_parser(
        "meta-train",
        help="meta-train a supernet and its population on class-folder datasets",
        description="Meta-trains the weight-sharing supernet (MAML-style) while evolving the "
        "meta-population of architectures. Writes OUT/supernet.pt (resumable checkpoint) and "
        "OUT/meta.json (population, curve, config).",
    )
    p.add_argument(
        "data", nargs="+", type=Path, help="dataset folder(s) or zip(s), class-folder layout"
    )
    p.add_argument(
        "--out", type=Path, required=True, help="run folder for supernet.pt and meta.json"
    )
    _add_selection(p)
    p.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="default",
        help="settings bundle (default: %(default)s, the widths 32,64,128,128 that AT-NAS's "
        "search found, layers 2-4 separable, meta-trained alone; 'dense128': the same widths "
        "as conv 3x3; 'search64' searches widths 16-64 during meta-training)",
    )
    p.add_argument("--way", type=int, default=5, help="classes per task (default: %(default)s)")
    p.add_argument(
        "--shot", type=int, default=1, help="support images per class (default: %(default)s)"
    )
    p.add_argument(
        "--query",
        type=int,
        default=None,
        help="query images per class in training tasks (default: the preset's)",
    )
    p.add_argument(
        "--focus",
        type=float,
        default=None,
        help="share of the budget, at its end, in which the population's winner alone trains "
        "(0 to evolve to the end; default: the preset's; presets with a search only, such as "
        "search64)",
    )
    p.add_argument(
        "--final-pick",
        choices=list(FINAL_PICKS),
        default=None,
        help="how the round before the focus picks the net: the fittest, or the cheapest to "
        "train within one standard error of it (default: the preset's)",
    )
    p.add_argument(
        "--final-widen",
        type=float,
        default=None,
        help="extra training cost (0.1 = 10%%) the picked net may take to widen its cheap late "
        "layers to the widest width (0: off; default: the preset's)",
    )
    p.add_argument(
        "--widen-limit",
        choices=list(WIDEN_LIMITS),
        default=None,
        help="what --final-widen is a share of: the picked net's training cost, or Conv-4's at "
        "the widest width explored, the first layer narrowing to pay (default: the preset's)",
    )
    p.add_argument(
        "--task-styles",
        type=float,
        default=None,
        metavar="SHARE",
        help="share of the training tasks drawn in a random image style (lower resolution, "
        "grey ink), for tasks whose images look unlike the training data (default: the "
        "preset's, 0)",
    )
    p.add_argument(
        "--algorithm",
        choices=[a.value for a in MetaAlgorithm],
        default="fomaml",
        help="meta-learner (default: %(default)s)",
    )
    p.add_argument(
        "--budget-seconds",
        type=float,
        default=None,
        help="wall-clock budget (default: the preset's; resumed runs count earlier time)",
    )
    p.add_argument(
        "--iterations", type=int, default=None, help="stop after this many meta-iterations"
    )
    p.add_argument(
        "--fixed-encode",
        default=None,
        help="train one architecture only, no evolution: 'conv4' (Conv-4 at the preset "
        "space's widest width: 128 for the default) or an encode as JSON",
    )
    p.add_argument(
        "--no-rotations", action="store_true", help="do not add 90/180/270-degree rotated classes"
    )
    p.add_argument(
        "--image-size",
        type=int,
        default=28,
        help="resize images to this square side (default: %(default)s)",
    )
    p.add_argument(
        "--channels",
        type=int,
        choices=(1, 3),
        default=1,
        help="1 for grayscale, 3 for RGB (default: %(default)s)",
    )
    p.add_argument("--resume", action="store_true", help="continue OUT/supernet.pt if it exists")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.set_defaults(func=cmd_meta_train)

    p = sub.add_parser(
        "search",
        help="search an architecture for a novel task and export the adapted model",
        description="Evolves the architecture for the task in TASK (support/<class>/*, and "
        "optionally query/<class>/* used only for the report) from the meta-population, adapts "
        "it on the support set and writes model.ts, model.json, arch.json, metrics.json and "
        "front.json (the best net found at each cost) to OUT. --max-* bound the net's cost.",
    )
    p.add_argument("task", type=Path, help="task folder or zip with support/ (and query/)")
    p.add_argument("--supernet", type=Path, required=True, help="supernet.pt written by meta-train")
    p.add_argument("--out", type=Path, required=True, help="folder for the model files")
    _add_search_options(p)
    constraints.add_options(p)
    p.add_argument("--json", action="store_true", help="print metrics as JSON on stdout")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser(
        "evaluate",
        help="measure a method's accuracy on sampled tasks (mean, 95%% CI, time per task)",
        description="Samples N-way K-shot tasks from DATA and reports mean query accuracy with a "
        "95%% confidence interval and the wall time per task.",
    )
    p.add_argument("data", nargs="+", type=Path, help="dataset folder(s) or zip(s)")
    p.add_argument("--supernet", type=Path, required=True, help="supernet.pt written by meta-train")
    _add_selection(p)
    p.add_argument(
        "--method",
        choices=[m.value for m in Method],
        default="atnas",
        help="what to evaluate (default: %(default)s)",
    )
    p.add_argument("--way", type=int, default=5, help="classes per task (default: %(default)s)")
    p.add_argument(
        "--shot", type=int, default=1, help="support images per class (default: %(default)s)"
    )
    p.add_argument(
        "--query", type=int, default=15, help="query images per class (default: %(default)s)"
    )
    p.add_argument("--tasks", type=int, default=100, help="number of tasks (default: %(default)s)")
    _add_search_options(p)
    p.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    p.set_defaults(func=cmd_evaluate)


def _add_selection(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--include",
        nargs="+",
        default=None,
        metavar="GROUP",
        help="keep only these top-level groups (e.g. alphabets)",
    )
    p.add_argument(
        "--exclude", nargs="+", default=None, metavar="GROUP", help="drop these top-level groups"
    )


def _add_search_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--population", type=int, default=None, help="population size (default: the preset's)"
    )
    p.add_argument(
        "--generations",
        type=int,
        default=None,
        help="generations after the first (default: the preset's)",
    )
    p.add_argument(
        "--budget-seconds",
        type=float,
        default=None,
        help="wall-clock budget, checked between generations",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument(
        "--no-pixel-fallback",
        action="store_true",
        help="always ship the adapted net, even where nearest centroid on pixels scores higher",
    )
    p.add_argument(
        "--pixel-expert",
        type=float,
        default=None,
        metavar="W",
        help="weight of nearest centroid on pixels multiplied into the adapted net "
        f"(0: the net alone; default: {SearchConfig().pixel_expert:g}; 2 gained 11 points on "
        "8x8 digits at 1 shot and lost 9 on thinned strokes, docs/benchmarks.md)",
    )


def _search_config(
    args: argparse.Namespace, state: MetaState, limits: CostLimits | None = None
) -> SearchConfig:
    cfg = pipeline.search_defaults(state, limits)  # the supernet's preset's settings
    changes: dict[str, Any] = {"seed": args.seed}
    if getattr(args, "no_pixel_fallback", False):
        changes["pixel_fallback"] = False
    if getattr(args, "pixel_expert", None) is not None:
        changes["pixel_expert"] = args.pixel_expert
    if args.population is not None:
        changes["population"] = args.population
    if args.generations is not None:
        changes["generations"] = args.generations
    if args.budget_seconds is not None:
        changes["budget_seconds"] = args.budget_seconds
    return replace(cfg, **changes)


def cmd_meta_train(args: argparse.Namespace) -> int:
    """Runs meta-training with a progress bar; writes supernet.pt and meta.json."""
    image = ImageConfig(args.image_size, args.channels)
    preset = get_preset(args.preset, args.channels)
    overrides: dict[str, Any] = {
        "way": args.way,
        "shot": args.shot,
        "algorithm": MetaAlgorithm(args.algorithm),
        "seed": args.seed,
        "rotations": not args.no_rotations,
        "image_size": args.image_size,
    }
    if args.query is not None:
        overrides["query"] = args.query
    if args.focus is not None:
        overrides["focus"] = args.focus
    if args.final_pick is not None:
        overrides["final_pick"] = args.final_pick
    if args.final_widen is not None:
        overrides["final_widen"] = args.final_widen
    if args.widen_limit is not None:
        overrides["widen_limit"] = args.widen_limit
    if args.task_styles is not None:
        overrides["task_styles"] = args.task_styles
    if args.budget_seconds is not None or args.iterations is not None:
        overrides["budget_seconds"] = args.budget_seconds
        overrides["iterations"] = args.iterations
    if args.fixed_encode is not None:
        overrides["fixed_encode"] = (
            preset.space.conv4()
            if args.fixed_encode == "conv4"
            else Encode.from_json(args.fixed_encode)
        )
    config = pipeline.meta_config(args.preset, **overrides)  # checked before anything is written
    if config.fixed_encode is not None:
        preset.space.validate(config.fixed_encode)
    images = pipeline.load_meta_images(args.data, image, args.include, args.exclude)
    args.out.mkdir(parents=True, exist_ok=True)
    ckpt = args.out / "supernet.pt"
    if ckpt.exists() and not args.resume:
        raise ConfigError(f"{ckpt} exists: pass --resume to continue it, or choose another --out")
    log.info("meta-training on %d classes from %d dataset(s)", images.num_classes, len(args.data))
    bar = tqdm(total=args.iterations, unit="it", desc="meta-train", dynamic_ncols=True, leave=False)

    def progress(p: Progress) -> None:
        bar.update(1)
        bar.set_postfix(
            loss=f"{p.loss:.3f}",
            acc=f"{p.acc:.2f}",
            best=f"{p.best_fitness or 0:.2f}",
            s=f"{p.elapsed:.0f}",
        )

    try:
        state = pipeline.meta_train(
            images,
            args.preset,
            config=config,
            checkpoint_path=ckpt,
            resume=args.resume,
            on_progress=progress,
        )
    finally:
        bar.close()
    summary = state.report()
    write_json(args.out / "meta.json", summary)
    best = state.ranked()[0]
    emit(
        summary,
        args.json,
        f"meta-trained {state.iteration} iterations in {state.elapsed:.0f}s; "
        f"best encode {best.encode} (fitness {best.fitness}); "
        f"wrote {ckpt} and {args.out / 'meta.json'}",
    )
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    """Searches and adapts a model for one task, then exports it."""
    bounds = constraints.constraints_of(args)  # bad values fail before any loading
    limits = CostLimits(**bounds) if bounds else None
    state, _ = MetaState.load(args.supernet)
    task = load_task(args.task, pipeline.task_image_config(state))
    if limits is not None:  # an impossible MAC or parameter bound: one line, before the bar
        check_feasible(state.space, limits, state.config.image_size, task.support.num_classes)
    cfg = _search_config(args, state, limits)
    bar = tqdm(
        total=cfg.generations + 1, unit="gen", desc="search", dynamic_ncols=True, leave=False
    )

    def on_gen(g: Generation) -> None:
        bar.update(1)
        bar.set_postfix(best=f"{g.best:.3f}", evals=g.evaluations)

    try:
        outcome = pipeline.search_task(state, task, cfg, limits=limits, on_generation=on_gen)
    finally:
        bar.close()
    pipeline.export_outcome(args.out, state, outcome)
    q = "n/a" if outcome.query_acc is None else f"{outcome.query_acc:.3f}"
    cost = outcome.metrics["cost"]
    emit(
        outcome.metrics,
        args.json,
        f"architecture: {outcome.result.encode}\nsupport accuracy: {outcome.result.support_acc:.3f}"
        f"  query accuracy: {q}\ncost: {cost['macs']:,} MACs, {cost['params']:,} parameters, "
        f"{cost['latency_ms']:.2f} ms per image\n{_floors_line(outcome.metrics['floors'])}\n"
        f"search {outcome.result.search_seconds:.1f}s + "
        f"adaptation {outcome.result.adapt_seconds:.1f}s ({outcome.result.evaluations} "
        f"candidates)\nmodel files in {args.out}"
        + "".join(f"\nwarning: {w}" for w in outcome.metrics["warnings"]),
    )
    return 0


def _floors_line(floors: dict[str, Any]) -> str:
    """The support-set floors beside the model, and a warning when it does not beat them."""
    s = floors["support"]
    line = (
        f"support floors: pixel centroid {s['pixel_centroid']:.3f}, feature prototype "
        f"{s['feature_prototype']:.3f}; model {s['model']:.3f}"
    )
    line = line if floors["model_beats_floors"] else line + " (does NOT beat the floors)"
    check = floors.get("check")
    if check and check["use_pixels"]:
        line += (
            f"\nmodel files hold the PIXEL CENTROID: it scored {check['pixel_acc']:.3f} on "
            f"held-out support images, the adapted subnet {check['model_acc']:.3f}"
        )
    return line


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Evaluates one method on sampled tasks."""
    state, _ = MetaState.load(args.supernet)
    image = pipeline.task_image_config(state)
    images = pipeline.load_meta_images(args.data, image, args.include, args.exclude)
    sampler = TaskSampler(images, args.way, args.shot, args.query)
    cfg = _search_config(args, state)
    bar = tqdm(total=args.tasks, unit="task", desc=args.method, dynamic_ncols=True, leave=False)
    try:
        summary = evaluate(
            state,
            sampler,
            args.tasks,
            Method(args.method),
            cfg,
            seed=args.seed,
            scratch_inner=InnerConfig(steps=50, lr=0.1),
            on_task=lambda i, a: bar.update(1),
        )
    finally:
        bar.close()
    emit(
        summary.to_json(),
        args.json,
        f"{summary.method}: {summary.mean_acc:.4f} ± {summary.ci95:.4f} over {summary.tasks} "
        f"{args.way}-way {args.shot}-shot tasks; {summary.median_seconds:.2f}s median, "
        f"{summary.p95_seconds:.2f}s p95 per task",
    )
    return 0
