"""Meta-training: the supernet's weights by meta-learning, its population by evolution.

Each meta-iteration samples a batch of N-way K-shot tasks; each task is paired with an encode
drawn from the population (or, with probability ``explore``, a uniformly random one; off by
default: at an 8-minute budget, 25% random paths cost the population's best encode 21 points
of 5-way 1-shot accuracy, see docs/benchmarks.md); the meta-gradients of all tasks update the
shared weights. Every ``ea_every`` iterations the population and its offspring are scored on
fresh tasks from held-out *fitness* classes (query accuracy after adaptation, all candidates on
the same tasks) and the fittest survive. With ``fixed_encode`` set there is no evolution: that
is the Conv-4 baseline on the same code path.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from atnas.checkpoint import load_checkpoint, save_checkpoint
from atnas.errors import CheckpointError, ConfigError
from atnas.evolution import breed_with_parents, random_encode
from atnas.learner import InnerConfig, adapt, score, start_weights
from atnas.meta import MetaAlgorithm, accumulate_meta_grad
from atnas.space import Encode, LayerChoice, SearchSpace
from atnas.supernet import Supernet
from atnas.tasks import Task, TaskSampler

log = logging.getLogger(__name__)
CHECKPOINT_KIND = "meta_state"


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
    meta_batch: int = 8
    population: int = 12
    offspring: int = 8
    ea_every: int = 50
    ea_tasks: int = 4
    explore: float = 0.0  # share of tasks trained on a random encode instead of a member
    sandwich: bool = True  # every meta-batch also trains the widest and a narrowest path
    fitness_memory: float = 0.5  # weight kept by earlier EA rounds' scores at each new round
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

    def ranked(self) -> list[Member]:
        """Population members, fittest first (unscored last)."""
        return sorted(self.population, key=lambda m: -1.0 if m.fitness is None else -m.fitness)

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
        )
        return state, dict(data["extra"])


def widest(space: SearchSpace) -> Encode:
    """The widest path that the sandwich rule trains: Conv-4 when the space has conv3x3."""
    if "conv3x3" in space.ops:
        return space.conv4()
    first = next(o for o in space.ops if o != "identity")
    return Encode(tuple(LayerChoice(first, space.max_width) for _ in range(space.num_layers)))


def narrowest(space: SearchSpace, rng: np.random.Generator) -> Encode:
    """A random path at the smallest width of every layer (the sandwich rule's other end)."""
    narrow = SearchSpace(space.num_layers, space.ops, space.widths[:1], space.in_channels)
    return random_encode(narrow, rng)


def initial_population(space: SearchSpace, n: int, rng: np.random.Generator) -> list[Encode]:
    """``n`` distinct encodes: the widest path, then random ones (fewer if the space is small).

    Bounded: a space with fewer than ``n`` valid encodes gives all it has after a fixed
    number of draws instead of looping forever.
    """
    pop = [widest(space)]
    for _ in range(50 * n):
        if len(pop) >= n:
            break
        enc = random_encode(space, rng)
        if enc not in pop:
            pop.append(enc)
    return pop[:n]


def task_accuracy(
    supernet: Supernet, encode: Encode, task: Task, inner: InnerConfig
) -> tuple[float, float]:
    """(query accuracy, query loss) of ``encode`` after adapting on the task's support set."""
    start = start_weights(
        supernet.weights(encode), encode, task.support_x, task.support_y, task.way, inner
    )
    fast = adapt(encode, start, task.support_x, task.support_y, inner)
    return score(encode, fast, task.query_x, task.query_y)


class MetaTrainer:
    """Runs (and resumes) meta-training within its budget, reporting progress."""

    def __init__(
        self,
        space: SearchSpace,
        config: MetaTrainConfig,
        train: TaskSampler,
        fitness: TaskSampler | None,
        device: torch.device | None = None,
    ) -> None:
        if config.fixed_encode is None and fitness is None:
            raise ConfigError("evolution needs a fitness task sampler (held-out classes)")
        if config.fixed_encode is not None:
            space.validate(config.fixed_encode)
        self.device = device or torch.device("cpu")
        self.train, self.fitness = train, fitness
        self.rng = np.random.default_rng(config.seed)
        net = Supernet(space, seed=config.seed).to(self.device)
        if config.fixed_encode is not None:
            population = [Member(config.fixed_encode)]
        else:
            population = [Member(e) for e in initial_population(space, config.population, self.rng)]
        self.state = MetaState(space, config, net, population)
        self.optimizer = torch.optim.Adam(net.parameters(), lr=config.meta_lr)

    @property
    def config(self) -> MetaTrainConfig:
        """The run's configuration."""
        return self.state.config

    def save(self, path: str | Path) -> None:
        """Checkpoints the run: state, optimiser and random generator (resumable)."""
        self.state.save(
            path,
            extra={
                "optimizer": self.optimizer.state_dict(),
                "rng": self.rng.bit_generator.state,
            },
        )

    @classmethod
    def resume(
        cls,
        path: str | Path,
        config: MetaTrainConfig,
        train: TaskSampler,
        fitness: TaskSampler | None,
        device: torch.device | None = None,
    ) -> MetaTrainer:
        """Continues the run saved at ``path``; ``config`` may only change the budgets."""
        state, extra = MetaState.load(path)
        if state.config.run_identity() != config.run_identity():
            raise CheckpointError(
                f"{path}: the checkpoint belongs to a run with other settings; "
                "only budget_seconds, iterations and checkpoint_every may change on resume"
            )
        trainer = cls(state.space, config, train, fitness, device)
        state.config = config
        state.supernet.to(trainer.device)
        trainer.state = state
        trainer.optimizer = torch.optim.Adam(state.supernet.parameters(), lr=config.meta_lr)
        trainer.optimizer.load_state_dict(extra["optimizer"])
        trainer.rng.bit_generator.state = extra["rng"]
        return trainer

    def _done(self, started: float, elapsed0: float) -> bool:
        cfg, st = self.config, self.state
        if cfg.iterations is not None and st.iteration >= cfg.iterations:
            return True
        return (
            cfg.budget_seconds is not None
            and elapsed0 + time.perf_counter() - started >= cfg.budget_seconds
        )

    def _pick_encode(self, slot: int) -> Encode:
        cfg, st = self.config, self.state
        if cfg.fixed_encode is None and cfg.sandwich and slot < 2 and cfg.meta_batch >= 3:
            # The sandwich rule: the widest and a narrowest path train in every meta-batch,
            # so that the whole width range (Conv-4 included) stays usable.
            return widest(st.space) if slot == 0 else narrowest(st.space, self.rng)
        if cfg.fixed_encode is None and self.rng.random() < cfg.explore:
            return random_encode(st.space, self.rng)
        return st.population[int(self.rng.integers(len(st.population)))].encode

    def meta_step(self) -> tuple[float, float]:
        """One meta-iteration over a batch of tasks; returns mean query (loss, accuracy)."""
        cfg = self.config
        self.optimizer.zero_grad(set_to_none=True)
        losses, accs = [], []
        for slot in range(cfg.meta_batch):
            encode = self._pick_encode(slot)
            task = self.train.sample(self.rng).to(self.device)
            out = accumulate_meta_grad(
                self.state.supernet, encode, task, cfg.inner, cfg.algorithm, 1.0 / cfg.meta_batch
            )
            losses.append(out.loss)
            accs.append(out.acc)
        self.optimizer.step()
        return float(np.mean(losses)), float(np.mean(accs))

    def evolve(self) -> None:
        """One EA round: score population + offspring on the same fresh tasks; keep the best.

        A member's fitness accumulates over rounds (a posterior mean; earlier rounds weigh
        ``fitness_memory`` as much at each new one), so one lucky round does not decide. A
        child starts from its parents' fitness, worth half a round's tasks: it was scored on
        weights it never trained, and must beat its parents by more than noise to displace them.
        """
        cfg, st = self.config, self.state
        assert self.fitness is not None
        parents = {m.encode: m for m in st.population}
        known = [m.fitness if m.fitness is not None else 0.0 for m in st.population]
        bred = breed_with_parents(st.space, list(parents), known, cfg.offspring, self.rng)
        tasks = [self.fitness.sample(self.rng).to(self.device) for _ in range(cfg.ea_tasks)]
        k = float(cfg.ea_tasks)
        updated: list[Member] = []
        for m in st.population:
            acc = float(
                np.mean([task_accuracy(st.supernet, m.encode, t, cfg.inner)[0] for t in tasks])
            )
            w0 = cfg.fitness_memory * m.weight if m.fitness is not None else 0.0
            f0 = m.fitness or 0.0
            updated.append(Member(m.encode, (w0 * f0 + k * acc) / (w0 + k), w0 + k))
        by_encode = {m.encode: m for m in updated}
        for child, origin in bred:
            acc = float(
                np.mean([task_accuracy(st.supernet, child, t, cfg.inner)[0] for t in tasks])
            )
            fs = [by_encode[p].fitness for p in origin if by_encode[p].fitness is not None]
            w0 = k / 2 if fs else 0.0
            f0 = float(np.mean(fs)) if fs else 0.0  # type: ignore[arg-type]
            updated.append(Member(child, (w0 * f0 + k * acc) / (w0 + k), w0 + k))
        updated.sort(key=lambda m: -(m.fitness or 0.0))
        st.population = updated[: cfg.population]
        st.ea_history.append(
            {
                "iteration": st.iteration,
                "best": st.population[0].fitness,
                "mean": float(np.mean([m.fitness for m in st.population])),
                "best_encode": st.population[0].encode.key(),
            }
        )

    def run(
        self,
        on_progress: Callable[[Progress], None] | None = None,
        checkpoint_path: str | Path | None = None,
    ) -> MetaState:
        """Trains until the budget is spent; checkpoints every ``checkpoint_every`` iterations.

        ``on_progress`` is called after every iteration; raising :class:`atnas.errors.Cancelled`
        from it stops the run (after a final checkpoint).
        """
        cfg, st = self.config, self.state
        started, elapsed0 = time.perf_counter(), st.elapsed
        try:
            while not self._done(started, elapsed0):
                loss, acc = self.meta_step()
                st.iteration += 1
                if cfg.fixed_encode is None and st.iteration % cfg.ea_every == 0:
                    self.evolve()
                st.elapsed = elapsed0 + time.perf_counter() - started
                st.curve.append(
                    {"iteration": st.iteration, "elapsed": st.elapsed, "loss": loss, "acc": acc}
                )
                if checkpoint_path is not None and st.iteration % cfg.checkpoint_every == 0:
                    self.save(checkpoint_path)
                if on_progress is not None:
                    best = st.ranked()[0].fitness
                    on_progress(
                        Progress(
                            st.iteration,
                            cfg.iterations,
                            st.elapsed,
                            cfg.budget_seconds,
                            loss,
                            acc,
                            best,
                            list(st.population),
                        )
                    )
        finally:
            st.elapsed = elapsed0 + time.perf_counter() - started
            if checkpoint_path is not None:
                self.save(checkpoint_path)
        if cfg.fixed_encode is None and all(m.fitness is None for m in st.population):
            self.evolve()  # a run too short for one EA round still ranks its population
            if checkpoint_path is not None:
                self.save(checkpoint_path)
        return st
