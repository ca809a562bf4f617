"""One-call entry points that the CLI and the service's workers share.

>>> from atnas import pipeline                                       # doctest: +SKIP
>>> images = pipeline.load_meta_images(["omniglot.zip"], exclude=["Korean"])
>>> state = pipeline.meta_train(images, "default", budget_seconds=60)
>>> task = load_task("my_task.zip", pipeline.task_image_config(state))
>>> outcome = pipeline.search_task(state, task)
>>> pipeline.export_outcome("out/", state, outcome)
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from atnas.collective import Collective
from atnas.cost import arch_cost
from atnas.data import ImageConfig, ImageSet, TaskData, load_images
from atnas.errors import ConfigError, ConstraintError, DatasetError
from atnas.evolution import Constraint
from atnas.export import PixelCentroids, model_kind
from atnas.fitness import EvaluatorFactory, support_splits
from atnas.floors import (
    centroid_spread_scale,
    check_pixel_floor,
    feature_prototype_acc,
    floors_report,
    fused_acc,
    pixel_centroid_acc,
    pixel_logit_scale,
    split_floors,
)
from atnas.latency import LatencyMeter
from atnas.limits import CostLimits, check_feasible, within
from atnas.metatrain import MetaState, MetaTrainConfig, MetaTrainer, Progress
from atnas.presets import PRESETS, get_preset
from atnas.search import Generation, SearchConfig, SearchResult, query_accuracy, search
from atnas.space import Encode
from atnas.supernet import class_means, logits
from atnas.tasks import TaskSampler, to_float

log = logging.getLogger(__name__)


def default_device() -> torch.device:
    """CUDA when present, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_meta_images(
    paths: Sequence[str | Path],
    image: ImageConfig = ImageConfig(),  # noqa: B008 (frozen value)
    include: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
) -> ImageSet:
    """Reads and concatenates class-folder datasets, keeping the selected groups.

    Groups named in ``include``/``exclude`` must exist in at least one dataset.
    """
    if not paths:
        raise DatasetError("give at least one dataset")
    if len(paths) == 1:  # filter while reading: excluded groups are never decoded
        return load_images(paths[0], image, include, exclude)
    sets = [load_images(p, image) for p in paths]
    return concat(sets).select(include, exclude)


def concat(sets: Sequence[ImageSet]) -> ImageSet:
    """Classes of several image sets in one; clashing class names get a ``dN:`` prefix."""
    names: list[str] = []
    groups: list[str] = []
    index: list[np.ndarray] = []
    offset = 0
    clash = len({n for s in sets for n in s.names}) < sum(s.num_classes for s in sets)
    for d, s in enumerate(sets):
        prefix = f"d{d}:" if clash else ""
        names += [prefix + n for n in s.names]
        groups += list(s.groups)
        index += [ix + offset for ix in s.class_index]
        offset += len(s.images)
    return ImageSet(names, groups, np.concatenate([s.images for s in sets]), index)


#: Settings of the search that runs during meta-training (the focus and the round before it):
#: a preset that meta-trains one fixed net has no such search, so they would do nothing there.
SEARCH_SETTINGS = ("focus", "final_tasks", "final_pick", "final_widen", "widen_limit")


def meta_config(preset: str = "default", **overrides: Any) -> MetaTrainConfig:
    """The preset's :class:`MetaTrainConfig` with ``overrides`` applied, checked: an unknown
    or invalid setting raises :class:`ConfigError` before anything is read or written, and
    so do search settings (:data:`SEARCH_SETTINGS`) for a preset that trains one fixed net
    (unless ``fixed_encode`` is overridden too)."""
    p = get_preset(preset)
    try:
        cfg = dataclasses.replace(p.meta, preset=p.name, **overrides)
    except TypeError as exc:
        raise ConfigError(f"unknown meta-training setting: {exc}") from None
    given = [k for k in SEARCH_SETTINGS if k in overrides]
    if given and p.meta.fixed_encode is not None and "fixed_encode" not in overrides:
        raise ConfigError(
            f"preset {p.name!r} meta-trains one fixed net, without a search: "
            f"{', '.join(given)} would do nothing (use the preset 'search64' to search widths)"
        )
    return cfg


def meta_trainer(
    images: ImageSet,
    preset: str = "default",
    *,
    config: MetaTrainConfig | None = None,
    checkpoint_path: str | Path | None = None,
    resume: bool = False,
    device: torch.device | None = None,
    collective: Collective | None = None,
    **overrides: Any,
) -> MetaTrainer:
    """A ready :class:`MetaTrainer` for ``images`` (see :func:`meta_train` for the arguments).

    Use it instead of :func:`meta_train` to look at or save the state while it trains.
    """
    p = get_preset(preset, channels=int(images.images.shape[1]))
    cfg = config or meta_config(preset, **overrides)
    if images.images.shape[-1] != cfg.image_size:
        raise ConfigError(
            f"images are {images.images.shape[-1]} px but the run expects {cfg.image_size} px"
        )
    train_images, fitness_images = images, None
    if cfg.fixed_encode is None:
        train_images, fitness_images = images.split(p.fitness_fraction, cfg.seed)
    train = TaskSampler(train_images, cfg.way, cfg.shot, cfg.query, cfg.rotations)
    fitness = None
    if fitness_images is not None:
        fitness = TaskSampler(fitness_images, cfg.way, cfg.shot, cfg.query, cfg.rotations)
    device = device or default_device()
    if resume and checkpoint_path is not None and Path(checkpoint_path).exists():
        return MetaTrainer.resume(checkpoint_path, cfg, train, fitness, device, collective)
    return MetaTrainer(p.space, cfg, train, fitness, device, collective)


def meta_train(
    images: ImageSet,
    preset: str = "default",
    *,
    config: MetaTrainConfig | None = None,
    checkpoint_path: str | Path | None = None,
    resume: bool = False,
    on_progress: Callable[[Progress], None] | None = None,
    device: torch.device | None = None,
    collective: Collective | None = None,
    should_stop: Callable[[], bool] | None = None,
    **overrides: Any,
) -> MetaState:
    """Meta-trains a supernet and its population on ``images``.

    ``overrides`` replace fields of the preset's :class:`MetaTrainConfig` (e.g. ``way=5,
    budget_seconds=60``). With ``resume`` and an existing ``checkpoint_path`` the saved run
    continues. A share of the classes (the preset's ``fitness_fraction``) is held out to score
    the population; none of them is used for weight updates.

    Data-parallel on N workers: call it on every worker with the same arguments and a
    ``collective`` of the N (e.g. :class:`atnas.collective.TorchCollective` over the process
    group that Ray Train set up). Each trains its share of every meta-batch; only rank 0
    writes ``checkpoint_path``, and with ``resume`` each worker reads the checkpoint at its
    own ``checkpoint_path`` (all must see the same file). ``should_stop`` is asked before every
    iteration; once it returns True on any worker, all stop with
    :class:`atnas.errors.Cancelled` (after a final checkpoint), as when ``on_progress``
    raises ``Cancelled``.
    """
    trainer = meta_trainer(
        images,
        preset,
        config=config,
        checkpoint_path=checkpoint_path,
        resume=resume,
        device=device,
        collective=collective,
        **overrides,
    )
    return trainer.run(on_progress, checkpoint_path, should_stop)


@dataclass
class TaskOutcome:
    """A searched and adapted model for one task, with its report."""

    result: SearchResult
    classes: list[str]
    query_acc: float | None
    metrics: dict[str, Any]
    pixels: PixelCentroids | None = None  # the pixel centroid, when it replaced or joined the net
    pixel_expert: float | None = None  # set when it joined it (TaskModel)

    @property
    def model_kind(self) -> str:
        """What the model files hold (:func:`atnas.export.model_kind`)."""
        return model_kind(self.pixels, self.pixel_expert)


def task_tensors(task: TaskData) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Support images (float, [0, 1]), labels and the number of classes of a task."""
    s = task.support
    x = to_float(s.images)
    y = torch.zeros(len(s.images), dtype=torch.long)
    for label, rows in enumerate(s.class_index):
        y[torch.from_numpy(rows)] = label
    return x, y, s.num_classes


def search_defaults(
    state: MetaState, limits: CostLimits | None = None, fits: Constraint | None = None
) -> SearchConfig:
    """The search settings of the preset that ``state`` was meta-trained with.

    A focused supernet (meta-trained with ``focus``) trained its chosen encode alone at the
    end, so without cost limits the search only scores and adapts that encode: in the paired
    benchmark the per-task search then picked worse nets (docs/benchmarks.md, "Issue 6").
    So does a supernet that trained one fixed encode (``fixed_encode``, e.g. the preset
    ``fixed128``): the other encodes hold untrained channels. With limits it searches as the
    preset says, unless ``fits`` (the limits as a predicate, see :func:`atnas.limits.within`)
    says that one trained net meets them: then it adapts that net alone, as without limits.
    An explicit population or generation count (in the job spec or at the CLI) still asks
    for a full search.
    """
    name = state.config.preset
    cfg = PRESETS[name].search if name in PRESETS else SearchConfig()
    net = state.focus if state.focus is not None else state.config.fixed_encode
    unbounded = limits is None or limits.empty
    if net is not None and (unbounded or (fits is not None and fits(net))):
        cfg = dataclasses.replace(cfg, population=1, generations=0, seed_top=1)
    return cfg


def search_task(
    state: MetaState,
    task: TaskData,
    config: SearchConfig | None = None,
    *,
    limits: CostLimits | None = None,
    make_evaluator: EvaluatorFactory | None = None,
    on_generation: Callable[[Generation], None] | None = None,
    check: Callable[[], None] | None = None,
    device: torch.device | None = None,
) -> TaskOutcome:
    """Searches an architecture for ``task`` from its support set, adapts it, reports.

    ``limits`` bound the returned net's MACs, parameters and batch-1 latency on ``device``
    (:class:`ConstraintError`, naming the smallest cost, when no encode can meet them). The
    report has the chosen net's cost, the accuracy-cost front of the candidates scored, and
    two floors (nearest centroid on pixels, nearest prototype on the inherited features)
    beside the model. Query images, when the task has them, are used after the search for
    the report only. ``check`` is called about every half second while candidates are scored
    (see :func:`atnas.search.search`); raise from it to stop.
    """
    device = device or default_device()
    state.supernet.to(device)
    x, y, n_way = task_tensors(task)
    x, y = x.to(device), y.to(device)
    image_size = state.config.image_size
    limits = limits or CostLimits()
    check_feasible(state.space, limits, image_size, n_way)
    meter = LatencyMeter(state.supernet, image_size, n_way)
    constraint = None
    if not limits.empty:
        constraint = within(state.space, limits, image_size, n_way, meter)
    cfg = config or search_defaults(state, limits, constraint)
    t0 = time.perf_counter()
    try:
        result = search(
            state.supernet,
            [m.encode for m in state.ranked()],
            x,
            y,
            n_way,
            cfg,
            make_evaluator=make_evaluator,
            constraint=constraint,
            on_generation=on_generation,
            prior=state.prior(),
            check=check,
        )
    except ConstraintError as exc:
        if limits.max_latency_ms is not None and meter.cache:
            fastest = min(meter.cache.values())
            raise ConstraintError(
                f"max_latency_ms {limits.max_latency_ms:g} cannot be met: {exc}; the fastest "
                f"net measured took {fastest:.3f} ms at batch 1 on {device}"
            ) from None
        raise
    floor_check, pixels = None, None
    expert: float | None = None
    if cfg.pixel_fallback:
        inner = cfg.final_inner or cfg.inner
        floor_check = check_pixel_floor(
            state.supernet,
            result.encode,
            x,
            y,
            n_way,
            inner,
            pixel_expert=cfg.pixel_expert,
            also_fused=cfg.check_fused,
        )
        if floor_check is not None and floor_check.choice == "fused":
            expert = cfg.check_fused
        if floor_check is not None and floor_check.use_pixels:
            pixels = PixelCentroids(class_means(x, y, n_way).cpu(), pixel_logit_scale(x, y, n_way))
            log.info(
                "pixel centroid %.3f beat the adapted subnet %.3f on %d held-out support "
                "images: shipping the pixel centroid",
                floor_check.pixel_acc,
                floor_check.model_acc,
                floor_check.held_out,
            )
    if pixels is None and cfg.pixel_expert > 0:
        expert = cfg.pixel_expert
    if pixels is None and expert is not None:
        pixels = PixelCentroids(class_means(x, y, n_way).cpu(), centroid_spread_scale(x, y, n_way))
    total = time.perf_counter() - t0
    splits = support_splits(x, y, n_way, cfg.folds, cfg.views, cfg.seed)
    support_floors = split_floors(state.supernet, result.encode, splits, n_way)
    query_acc, query_floors = None, None
    if task.query is not None and len(task.query.images):
        qx = to_float(task.query.images).to(device)
        qy = torch.zeros(len(task.query.images), dtype=torch.long)
        for label, rows in enumerate(task.query.class_index):
            qy[torch.from_numpy(rows)] = label
        qy = qy.to(device)
        subnet_acc = query_accuracy(result, qx, qy)
        pixel_acc = pixel_centroid_acc(x, y, qx, qy, n_way)
        query_acc = subnet_acc
        if expert is not None:
            with torch.no_grad():
                out = logits(qx, result.encode, result.weights)
            query_acc = fused_acc(out, x, y, qx, qy, n_way, expert)
        elif pixels is not None:
            query_acc = pixel_acc
        query_floors = {
            "pixel_centroid": pixel_acc,
            "feature_prototype": feature_prototype_acc(
                state.supernet, result.encode, x, y, qx, qy, n_way
            ),
            "model": query_acc,
            "subnet": subnet_acc,
        }
    cost = arch_cost(state.space, result.encode, image_size, n_way)
    metrics = {
        **result.metrics(),
        "query_acc": query_acc,
        "query_images": 0 if task.query is None else len(task.query.images),
        "support_images": len(task.support.images),
        "classes": task.support.names,
        "total_seconds": total,
        "device": str(device),
        "search_config": cfg.to_json(),
        "cost": {"macs": cost.flops, "params": cost.params, "latency_ms": meter(result.encode)},
        "limits": limits.to_json(),
        "floors": {
            **floors_report(support_floors, result.fitness.acc, query_floors),
            "check": None if floor_check is None else floor_check.to_json(),
        },
        "pixel_expert": expert,
        "warnings": untrained_warnings(state, result.encode, limits, n_way),
    }
    outcome = TaskOutcome(result, task.support.names, query_acc, metrics, pixels, expert)
    metrics["model"] = outcome.model_kind
    return outcome


#: The presets that meta-train one net alone, cheapest first, named in the advice of
#: :func:`untrained_warnings` (``smallsep`` and ``fixed128`` repeat ``default`` and ``dense128``).
FIXED_NET_PRESETS = ("tinysep", "default", "dense128")


def untrained_warnings(
    state: MetaState, chosen: Encode, limits: CostLimits, n_way: int
) -> list[str]:
    """What a user must know before deploying ``chosen``: when the supernet meta-trained one
    fixed net (the ``default``, ``dense128``, ``fixed128``, ``small128``, ``smallsep`` and
    ``tinysep`` presets) and the search returned another (cost limits ruled the net out, or a
    search was asked for), the chosen net was never meta-trained as such: on ``dense128``'s
    supernet (the default until round 32) the nets within Conv-4/16's cost scored far below
    Conv-4/16 meta-trained alone (docs/benchmarks.md). The advice names the fixed-net presets
    whose net meets ``limits`` (MACs and parameters, at this supernet's image size)."""
    trained = state.config.fixed_encode
    if trained is None or chosen == trained:
        return []
    cost = arch_cost(state.space, trained, state.config.image_size, n_way)
    bounds = ", ".join(f"{k} {v}" for k, v in limits.to_json().items() if v is not None)
    why = f"the limits ({bounds}) ruled it out" if bounds else "the search chose another"
    return [
        f"this supernet meta-trained one net ({trained.key()}, {cost.flops / 1e6:.2f}M MACs) "
        f"and {why}: the chosen net was never meta-trained as such (its channels were "
        "trained only as part of that net, or not at all), so expect it to score well below "
        f"a net meta-trained at its cost ({fixed_net_advice(state, limits, n_way)})"
    ]


def fixed_net_advice(state: MetaState, limits: CostLimits, n_way: int) -> str:
    """Which presets to meta-train instead: those of :data:`FIXED_NET_PRESETS` whose net fits
    ``limits`` (latency is not known before a net runs), with their cost derived from the
    presets themselves, or a searching preset when none fits."""
    fits = []
    for name in FIXED_NET_PRESETS:
        preset = get_preset(name, channels=state.space.in_channels)
        net = preset.meta.fixed_encode
        if net is None:
            continue
        cost = arch_cost(preset.space, net, state.config.image_size, n_way)
        if (limits.max_macs is None or cost.flops <= limits.max_macs) and (
            limits.max_params is None or cost.params <= limits.max_params
        ):
            fits.append(f"'{name}' ({cost.flops / 1e6:.2f}M MACs, {cost.params:,} params)")
    search = "a searching preset such as 'search64'"
    if not fits:
        return f"no fixed-net preset fits these limits: meta-train {search}"
    scope = "" if limits.empty else " within these limits"
    return f"meta-train a preset that trains one net{scope}: {' or '.join(fits)}; or {search}"


def task_image_config(state: MetaState) -> ImageConfig:
    """How a task's images must be decoded to fit the meta-supernet."""
    return ImageConfig(state.config.image_size, state.space.in_channels)


def export_outcome(
    out_dir: str | Path,
    state: MetaState,
    outcome: TaskOutcome,
    provenance: dict[str, Any] | None = None,
) -> dict[str, Path]:
    """Writes model.ts, model.onnx, model.json, arch.json, metrics.json, front.json and the
    model card README.md (with ``provenance``: the job, supernet, spec) for a searched task."""
    from atnas.export import export_model

    return export_model(
        out_dir,
        state.space,
        outcome.result.encode,
        outcome.result.weights,
        outcome.classes,
        state.config.image_size,
        outcome.metrics,
        front=[p.to_json() for p in outcome.result.front],
        provenance=provenance,
        pixels=outcome.pixels,
        pixel_expert=outcome.pixel_expert,
    )
