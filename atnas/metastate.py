"""What defines a meta-training run and what it produces: the config, the meta-population's
members, progress reports and the meta-state (supernet + population), saved and resumed."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from atnas.checkpoint import load_checkpoint, save_checkpoint
from atnas.errors import CheckpointError, ConfigError
from atnas.learner import InnerConfig
from atnas.meta import MetaAlgorithm
from atnas.space import Encode, SearchSpace
from atnas.supernet import Supernet

CHECKPOINT_KIND = "meta_state"
#: How the final round picks the focus: the fittest encode, or the cheapest one to train
#: whose paired accuracy is within one standard error of the fittest's.
FINAL_PICKS = ("fittest", "frugal")
#: How a focus encode's channels past ``explore_width`` start: their random initialisation, or
#: copies of the trained ones (:func:`atnas.net2wider.warm_widened`).
WIDEN_INITS = ("random", "copy")
#: What ``final_widen`` is a share of: the pick's own training cost, or that of the widest
#: uniform path explored (Conv-4 at ``explore_width``), the first layer then narrowing (to
#: half its width at most) to pay for wider late layers.
WIDEN_LIMITS = ("pick", "conv4")
#: How the meta-optimiser's learning rate moves over the budget: held at ``meta_lr``, or
#: falling from it to 0 along a half cosine of the budget spent (time or iterations, whichever
#: is further along; :func:`atnas.metatrain.meta_lr_at`). "cosine" cost 1.8 (5w1s) and 4.6
#: (20w1s) points at a 20-minute CPU budget, far from convergence (docs/benchmarks.md, round 14).
META_LR_SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class MetaTrainConfig:
    """Everything that defines a meta-training run (budgets included)."""

    way: int = 5
    shot: int = 1
    query: int = 5  # query images per class in meta-training tasks
    rotations: bool = True  # rotated copies (90/180/270 degrees) as extra classes
    image_size: int = 28  # side of the square input images, in pixels
    algorithm: MetaAlgorithm = MetaAlgorithm.FOMAML
    inner: InnerConfig = InnerConfig()  # noqa: RUF009 (frozen value)
    meta_lr: float = 1e-3
    meta_lr_schedule: str = "constant"  # or "cosine": down to 0 at the end of the budget
    meta_batch: int = 8
    population: int = 12
    offspring: int = 8
    ea_every: int = 50
    ea_tasks: int = 4
    explore: float = 0.0  # share of tasks trained on a random encode instead of a member
    task_styles: float = 0.0  # share of meta-training tasks drawn in a random style (styles.py)
    sandwich: bool = True  # every meta-batch also trains the widest and a narrowest path
    fitness_memory: float = 0.5  # weight kept by earlier EA rounds' scores at each new round
    focus: float = 0.0  # share of the budget, at its end, that trains the final choice alone
    final_tasks: int = 0  # fitness tasks of a last selection round before the focus (0: none)
    final_pick: str = "fittest"  # how that round picks the focus: "fittest" or "frugal"
    final_widen: float = 0.0  # extra training cost the pick may take to widen its cheap layers
    explore_width: int | None = None  # widest width the evolution explores (None: the space's)
    widen_init: str = "random"  # channels widened past explore_width: "random" or "copy"
    widen_limit: str = "pick"  # final_widen's base cost: the pick's, or "conv4" (see WIDEN_LIMITS)
    fixed_encode: Encode | None = None
    budget_seconds: float | None = 600.0
    iterations: int | None = None
    checkpoint_every: int = 100
    seed: int = 0
    preset: str = "default"  # the preset it came from: its search settings serve the supernet

    def __post_init__(self) -> None:
        if self.budget_seconds is None and self.iterations is None:
            raise ConfigError("set budget_seconds, iterations or both")
        if self.budget_seconds is not None and self.budget_seconds <= 0:
            raise ConfigError("budget_seconds must be positive")
        if self.iterations is not None and self.iterations < 1:
            raise ConfigError("iterations must be at least 1")
        if self.meta_batch < 1 or self.population < 1 or self.ea_every < 1 or self.ea_tasks < 1:
            raise ConfigError("meta_batch, population, ea_every and ea_tasks must be >= 1")
        if not 0.0 <= self.explore <= 1.0:
            raise ConfigError("explore must be in [0, 1]")
        if not 0.0 <= self.task_styles <= 1.0:
            raise ConfigError("task_styles must be in [0, 1]")
        if not 0.0 <= self.focus < 1.0:
            raise ConfigError("focus must be in [0, 1)")
        if self.final_tasks < 0:
            raise ConfigError("final_tasks must be >= 0")
        if not 0.0 <= self.final_widen <= 1.0:
            raise ConfigError("final_widen must be in [0, 1]")
        if self.explore_width is not None and self.explore_width < 1:
            raise ConfigError("explore_width must be a positive width")
        if self.widen_init not in WIDEN_INITS:
            raise ConfigError(f"widen_init must be one of {WIDEN_INITS}, got {self.widen_init!r}")
        if self.widen_limit not in WIDEN_LIMITS:
            raise ConfigError(
                f"widen_limit must be one of {WIDEN_LIMITS}, got {self.widen_limit!r}"
            )
        lr = self.meta_lr
        if isinstance(lr, bool) or not isinstance(lr, int | float) or not 0 < lr < math.inf:
            raise ConfigError(f"meta_lr must be a positive number, got {lr!r}")
        if self.meta_lr_schedule not in META_LR_SCHEDULES:
            raise ConfigError(
                f"meta_lr_schedule must be one of {META_LR_SCHEDULES}, "
                f"got {self.meta_lr_schedule!r}"
            )
        if self.final_pick not in FINAL_PICKS:
            raise ConfigError(f"final_pick must be one of {FINAL_PICKS}, got {self.final_pick!r}")

    def to_json(self) -> dict[str, Any]:
        """JSON form (stored in checkpoints and artifacts)."""
        d = dataclasses.asdict(self)
        d["algorithm"] = self.algorithm.value
        d["fixed_encode"] = None if self.fixed_encode is None else self.fixed_encode.to_json()
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> MetaTrainConfig:
        """Inverse of :meth:`to_json`."""
        d = dict(d)
        d["algorithm"] = MetaAlgorithm(d["algorithm"])
        d["inner"] = InnerConfig(**d["inner"])
        fixed = d.get("fixed_encode")
        d["fixed_encode"] = None if fixed is None else Encode.from_json(fixed)
        return cls(**d)

    def run_identity(self) -> dict[str, Any]:
        """The fields that must match for a checkpoint to be resumed (budgets may change)."""
        d = self.to_json()
        for k in ("budget_seconds", "iterations", "checkpoint_every"):
            d.pop(k)
        return d


@dataclass
class Member:
    """A member of the meta-population; ``fitness`` is None until first scored.

    ``fitness`` is a running posterior mean over EA rounds and ``weight`` the number of
    fitness tasks behind it (earlier rounds decayed by ``fitness_memory``).
    """

    encode: Encode
    fitness: float | None = None
    weight: float = 0.0


@dataclass
class Progress:
    """What a progress callback receives after each meta-iteration."""

    iteration: int
    total: int | None
    elapsed: float
    budget_seconds: float | None
    loss: float
    acc: float
    best_fitness: float | None
    population: list[Member]
    phase: str = "meta_train"


@dataclass
class MetaState:
    """The product of meta-training: the meta-supernet and the meta-population."""

    space: SearchSpace
    config: MetaTrainConfig
    supernet: Supernet
    population: list[Member]
    iteration: int = 0
    elapsed: float = 0.0
    curve: list[dict[str, float]] = field(default_factory=list)
    ea_history: list[dict[str, Any]] = field(default_factory=list)
    focus: Encode | None = None  # the encode trained alone once the focus phase began
    final_seconds: float = 0.0  # how long the final round took (kept for the closing one)

    def ranked(self) -> list[Member]:
        """Population members, fittest first (unscored last); a focused encode leads."""
        return sorted(
            self.population,
            key=lambda m: (
                m.encode != self.focus,
                -1.0 if m.fitness is None else -m.fitness,
            ),
        )

    def prior(self) -> dict[Encode, float]:
        """The across-task fitness of each scored member (the prior of a per-task search)."""
        return {m.encode: m.fitness for m in self.population if m.fitness is not None}

    def best_encode(self) -> Encode:
        """The fittest encode of the meta-population (the fixed encode for a baseline)."""
        return self.ranked()[0].encode

    def report(self) -> dict[str, Any]:
        """The run as JSON: iterations, speed, config, ranked population, EA history, curve."""
        return {
            "iterations": self.iteration,
            "elapsed_seconds": self.elapsed,
            "iterations_per_second": self.iteration / self.elapsed if self.elapsed else None,
            "config": self.config.to_json(),
            "space": self.space.to_json(),
            "population": [
                {"encode": m.encode.to_json(), "key": m.encode.key(), "fitness": m.fitness}
                for m in self.ranked()
            ],
            "ea_history": self.ea_history,
            "curve": self.curve[:: max(1, len(self.curve) // 200)],
        }

    def save(self, path: str | Path, extra: dict[str, Any] | None = None) -> None:
        """Writes this state (and ``extra`` training state) atomically to ``path``."""
        save_checkpoint(
            path,
            CHECKPOINT_KIND,
            {
                "space": self.space.to_json(),
                "config": self.config.to_json(),
                "supernet": self.supernet.state_dict(),
                "population": [
                    {"encode": m.encode.to_json(), "fitness": m.fitness, "weight": m.weight}
                    for m in self.population
                ],
                "iteration": self.iteration,
                "elapsed": self.elapsed,
                "curve": self.curve,
                "ea_history": self.ea_history,
                "focus": None if self.focus is None else self.focus.to_json(),
                "final_seconds": self.final_seconds,
                "extra": extra or {},
            },
        )

    @classmethod
    def load(cls, path: str | Path) -> tuple[MetaState, dict[str, Any]]:
        """Reads a state written by :meth:`save`; returns it and its ``extra`` dict."""
        data = load_checkpoint(path, CHECKPOINT_KIND)
        try:
            space = SearchSpace.from_json(data["space"])
            config = MetaTrainConfig.from_json(data["config"])
            net = Supernet(space)
            net.load_state_dict(data["supernet"])
            population = [
                Member(Encode.from_json(m["encode"]), m["fitness"], float(m.get("weight", 0.0)))
                for m in data["population"]
            ]
            focus = data.get("focus")
            focused = None if focus is None else Encode.from_json(focus)
        except (KeyError, TypeError, RuntimeError, ValueError) as exc:
            raise CheckpointError(f"{path}: inconsistent meta-state ({exc})") from None
        state = cls(
            space,
            config,
            net,
            population,
            int(data["iteration"]),
            float(data["elapsed"]),
            list(data["curve"]),
            list(data["ea_history"]),
            focused,
            float(data.get("final_seconds", 0.0)),
        )
        return state, dict(data["extra"])
