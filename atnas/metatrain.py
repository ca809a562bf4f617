"""Meta-training: the supernet's weights by meta-learning, its population by evolution.

Each meta-iteration samples a batch of N-way K-shot tasks; each task is paired with an encode.
By the *sandwich rule* the first two tasks of every batch train the widest path (Conv-4) and a
narrowest one, so the whole width range stays usable; the others train members of the
population (or, with probability ``explore``, uniformly random encodes; off by default). The
meta-gradients of all tasks update the shared weights. Every ``ea_every`` iterations the
population and its offspring are scored on fresh tasks from held-out *fitness* classes (query
accuracy after adaptation, all candidates on the same tasks); a member's fitness accumulates
over rounds, a child starts from its parents', and the fittest survive. With ``fixed_encode``
set there is no evolution: that is the Conv-4 baseline on the same code path.

Focus. A supernet spreads its updates over many paths, so at a small budget every path ends
up less trained than the same net trained alone. With ``focus`` > 0 the last ``focus`` share
of the budget (time or iterations) ends the evolution: a final round scores the population
and the widest path on ``final_tasks`` fitness tasks, and the winner alone trains every slot
from then on, from its inherited weights (one-shot NAS, then training of the choice). A
closing round re-scores the members at the end, so a per-task search sees current priors;
under a time budget the focus stops early by as long as the final round took, so the closing
round fits inside ``budget_seconds`` (it ran after it until 2026-11-29: 624 s for 600).

Measured (150 s budgets, docs/results/sweep-2026-11-26.jsonl): without the sandwich rule the
best encode scored 21 points lower at 5w1s, and with fitness overwritten each round 10 lower.
The config, members and meta-state live in :mod:`atnas.metastate`; the sandwich paths and the
initial population in :mod:`atnas.population`.

Data-parallel: given a :class:`atnas.collective.Collective` of N workers, each holds a replica
and takes a share of the meta-batch's tasks (and of the EA's evaluations); the sums are
all-reduced, so every replica takes the same step and keeps the same population. Each slot of
a meta-batch draws its encode and task from its own generator (:func:`slot_rng`, from the seed
and the slot's place), so a worker samples only its own slots' tasks and any N gives the same
run as one worker, to float rounding.
"""

from __future__ import annotations

import json
import logging
import math
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from atnas.collective import Collective, GradSum, Single, same_everywhere, shard
from atnas.cost import arch_cost
from atnas.errors import Cancelled, CheckpointError, ConfigError
from atnas.evolution import breed_with_parents, random_encode
from atnas.learner import InnerConfig, adapt, score, start_weights
from atnas.meta import accumulate_meta_grad
from atnas.metastate import CHECKPOINT_KIND, Member, MetaState, MetaTrainConfig, Progress
from atnas.net2wider import warm_widened
from atnas.population import (
    initial_population,
    narrowest,
    uniform_paths,
    widen_cheap_layers,
    widest,
)
from atnas.space import Encode, SearchSpace
from atnas.styles import restyle
from atnas.supernet import Supernet
from atnas.tasks import Task, TaskSampler

__all__ = [
    "CHECKPOINT_KIND",
    "Member",
    "MetaState",
    "MetaTrainConfig",
    "MetaTrainer",
    "Progress",
    "frugal_pick",
    "initial_population",
    "narrowest",
    "slot_rng",
    "task_accuracy",
    "widest",
]

log = logging.getLogger(__name__)

SLOT_STREAM = 1  # spawn-key tag of the per-slot generators (the run's own generator has none)
# The fixed cost of one task, in MACs of the subnet, when work is shared between workers. On
# one CPU thread (default preset, 28 px, 5-way 1-shot) a FOMAML task took about 10 ms plus
# 4.5 ms per million MACs: 2M MACs' worth of fixed cost.
TASK_OVERHEAD_MACS = 2_000_000


def slot_rng(seed: int, iteration: int, slot: int) -> np.random.Generator:
    """The generator of one slot of one meta-batch: it picks the slot's encode, then its task.

    It depends on the run's seed and the slot's place only, so each worker draws just its own
    slots' tasks while all of them agree on every slot's encode, however many there are.

    >>> float(slot_rng(0, 3, 1).random()) == float(slot_rng(0, 3, 1).random())
    True
    """
    return np.random.default_rng(
        np.random.SeedSequence(seed, spawn_key=(SLOT_STREAM, iteration, slot))
    )


def meta_lr_at(config: MetaTrainConfig, spent: float) -> float:
    """The meta-optimiser's learning rate once ``spent`` (0-1) of the budget is used.

    ``"cosine"`` is MAML++'s annealing (Antoniou et al. 2019) fitted to the run's own budget,
    so a 5-minute and a 20-minute run both end at a rate of 0.
    """
    if config.meta_lr_schedule == "cosine":
        return config.meta_lr * 0.5 * (1.0 + math.cos(math.pi * min(max(spent, 0.0), 1.0)))
    return config.meta_lr


def frugal_pick(scores: np.ndarray, costs: list[float]) -> int:
    """The row of the cheapest candidate whose accuracy is within one standard error of the
    best's (the one-standard-error rule), from per-task ``scores`` (candidates x tasks, the
    same tasks for all) and training ``costs``; ties go to the higher mean.

    Differences are paired per task, so their standard error is small where the tasks are
    hard for every candidate alike. At a fixed wall-clock a cheaper net trains for more
    iterations after the pick, and serves cheaper.

    >>> scores = np.array([[0.8, 0.9, 0.7], [0.82, 0.85, 0.7], [0.5, 0.6, 0.4]])
    >>> frugal_pick(scores, [4.0, 1.0, 0.5])  # row 2 is cheaper, but far behind
    1
    """
    means = scores.mean(axis=1)
    best = int(np.argmax(means))
    n = scores.shape[1]
    diffs = scores - scores[best]
    se = diffs.std(axis=1, ddof=1) / np.sqrt(n) if n > 1 else np.zeros(len(means))
    tied = [i for i in range(len(means)) if means[i] - means[best] >= -se[i]]
    return min(tied, key=lambda i: (costs[i], -means[i]))


def task_accuracy(
    supernet: Supernet, encode: Encode, task: Task, inner: InnerConfig
) -> tuple[float, float]:
    """(query accuracy, query loss) of ``encode`` after adapting on the task's support set."""
    start = start_weights(
        supernet.weights(encode), encode, task.support_x, task.support_y, task.way, inner
    )
    fast = adapt(encode, start, task.support_x, task.support_y, inner, rates=supernet.fixed_rates())
    return score(encode, fast, task.query_x, task.query_y)


def _with_rates_slot(saved: dict[str, Any], n_params: int) -> dict[str, Any]:
    """An optimiser state saved before the supernet had ``log_rates`` (2026-12-04), shifted to
    the parameters of today's supernet, whose first parameter is ``log_rates`` (no state yet:
    it had none to learn); any other state is returned as it is."""
    groups = saved["param_groups"]
    if len(groups) != 1 or len(groups[0]["params"]) != n_params - 1:
        return saved
    shifted = {int(k) + 1: v for k, v in saved["state"].items()}
    group = {**groups[0], "params": [0] + [int(i) + 1 for i in groups[0]["params"]]}
    return {"state": shifted, "param_groups": [group]}


class MetaTrainer:
    """Runs (and resumes) meta-training within its budget, reporting progress."""

    def __init__(
        self,
        space: SearchSpace,
        config: MetaTrainConfig,
        train: TaskSampler,
        fitness: TaskSampler | None,
        device: torch.device | None = None,
        collective: Collective | None = None,
    ) -> None:
        if config.fixed_encode is None and fitness is None:
            raise ConfigError("evolution needs a fitness task sampler (held-out classes)")
        if config.fixed_encode is not None:
            space.validate(config.fixed_encode)
        self.explored = space.up_to(config.explore_width)  # what the evolution samples
        self.device = device or torch.device("cpu")
        self.collective = collective or Single()
        self.train, self.fitness = train, fitness
        self._costs: dict[Encode, float] = {}
        self.rng = np.random.default_rng(config.seed)
        net = Supernet(space, seed=config.seed).to(self.device)
        if config.fixed_encode is not None:
            population = [Member(config.fixed_encode)]
        else:
            population = [
                Member(e) for e in initial_population(self.explored, config.population, self.rng)
            ]
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
        collective: Collective | None = None,
    ) -> MetaTrainer:
        """Continues the run saved at ``path``; ``config`` may only change the budgets.

        Any number of workers may resume a checkpoint, each from its own copy of the file.
        """
        state, extra = MetaState.load(path)
        if state.config.run_identity() != config.run_identity():
            raise CheckpointError(
                f"{path}: the checkpoint belongs to a run with other settings; "
                "only budget_seconds, iterations and checkpoint_every may change on resume"
            )
        trainer = cls(state.space, config, train, fitness, device, collective)
        state.config = config
        state.supernet.to(trainer.device)
        trainer.state = state
        trainer.optimizer = torch.optim.Adam(state.supernet.parameters(), lr=config.meta_lr)
        trainer.optimizer.load_state_dict(
            _with_rates_slot(extra["optimizer"], len(list(state.supernet.parameters())))
        )
        trainer.rng.bit_generator.state = extra["rng"]
        return trainer

    def _done(self, started: float, elapsed0: float) -> bool:
        cfg, st = self.config, self.state
        if cfg.iterations is not None and st.iteration >= cfg.iterations:
            return True
        return (
            cfg.budget_seconds is not None
            and elapsed0 + time.perf_counter() - started + self._closing_reserve()
            >= cfg.budget_seconds
        )

    def _closing_reserve(self) -> float:
        """Seconds kept at the end of a time budget for the closing round of a focused run:
        what the final round that began the focus took (it scores as many members on as
        many tasks), so that the whole run, closing round included, fits its budget."""
        return self.state.final_seconds if self.state.focus is not None else 0.0

    def _fingerprint(self) -> list[float]:
        """Numbers that differ when two workers do not hold the same run (iteration,
        population, generator, weights)."""
        st = self.state
        text = json.dumps(
            [
                st.iteration,
                [(m.encode.key(), m.fitness, m.weight) for m in st.population],
                self.rng.bit_generator.state,
            ],
            sort_keys=True,
        )
        weights = sum(float(p.detach().double().sum()) for p in st.supernet.parameters())
        return [float(st.iteration), float(zlib.crc32(text.encode())), weights]

    def _pick_encode(self, slot: int, rng: np.random.Generator) -> Encode:
        cfg, st = self.config, self.state
        if st.focus is not None:
            return st.focus
        if cfg.fixed_encode is None and cfg.sandwich and slot < 2 and cfg.meta_batch >= 3:
            # The sandwich rule: the widest and a narrowest path train in every meta-batch,
            # so that the whole width range (Conv-4 included) stays usable.
            return widest(self.explored) if slot == 0 else narrowest(self.explored, rng)
        if cfg.fixed_encode is None and rng.random() < cfg.explore:
            return random_encode(self.explored, rng)
        return st.population[int(rng.integers(len(st.population)))].encode

    def _cost(self, encode: Encode) -> float:
        """What one task on ``encode`` costs, to share work evenly between workers."""
        if encode not in self._costs:
            cfg = self.config
            macs = arch_cost(self.state.space, encode, cfg.image_size, cfg.way).flops
            self._costs[encode] = float(macs + TASK_OVERHEAD_MACS)
        return self._costs[encode]

    def meta_step(self) -> tuple[float, float]:
        """One meta-iteration over a batch of tasks; returns mean query (loss, accuracy).

        Every worker picks every slot's encode; each samples and trains its own slots' tasks
        (scaled by 1 / meta_batch), and two all-reduces sum the losses and which parameters
        were touched, then the touched parameters' gradients (exactly: see
        :class:`atnas.collective.GradSum`).
        """
        cfg, st, col = self.config, self.state, self.collective
        self.optimizer.zero_grad(set_to_none=True)
        total = GradSum(list(st.supernet.parameters()), extras=2)
        rngs = [slot_rng(cfg.seed, st.iteration, slot) for slot in range(cfg.meta_batch)]
        encodes = [self._pick_encode(slot, rng) for slot, rng in enumerate(rngs)]
        owner = shard([self._cost(e) for e in encodes], col.world)
        loss = acc = 0.0
        for slot, (encode, rng) in enumerate(zip(encodes, rngs, strict=True)):
            if owner[slot] != col.rank:
                continue
            task = self.train.sample(rng)
            if cfg.task_styles > 0 and rng.random() < cfg.task_styles:
                task, _ = restyle(task, rng)
            task = task.to(self.device)
            out = accumulate_meta_grad(
                st.supernet, encode, task, cfg.inner, cfg.algorithm, 1.0 / cfg.meta_batch
            )
            total.add_grads_()
            loss += out.loss
            acc += out.acc
        loss, acc = total.all_reduce_(col, [loss, acc])
        self.optimizer.step()
        return loss / cfg.meta_batch, acc / cfg.meta_batch

    def _accuracies(self, encodes: list[Encode], tasks: list[Task]) -> np.ndarray:
        """Query accuracy of every encode on every task after adaptation, (E, T); each worker
        scores its share of the pairs and one all-reduce gathers them."""
        col, inner = self.collective, self.config.inner
        pairs = [(i, j) for i in range(len(encodes)) for j in range(len(tasks))]
        owner = shard([self._cost(encodes[i]) for i, _ in pairs], col.world)
        on_device: dict[int, Task] = {}
        accs = [0.0] * len(pairs)
        for k, (i, j) in enumerate(pairs):
            if owner[k] == col.rank:
                if j not in on_device:
                    on_device[j] = tasks[j].to(self.device)
                task = on_device[j]
                accs[k] = task_accuracy(self.state.supernet, encodes[i], task, inner)[0]
        out = torch.tensor(accs, dtype=torch.float64, device=col.device)
        col.all_reduce_sum_(out)  # x + 0.0 is exact: every worker gets the very same scores
        return out.cpu().numpy().reshape(len(encodes), len(tasks))

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
        bred = breed_with_parents(self.explored, list(parents), known, cfg.offspring, self.rng)
        tasks = [self.fitness.sample(self.rng) for _ in range(cfg.ea_tasks)]
        scores = self._accuracies(
            [m.encode for m in st.population] + [child for child, _ in bred], tasks
        )
        k = float(cfg.ea_tasks)
        updated: list[Member] = []
        for row, m in enumerate(st.population):
            updated.append(self._rescored(m, float(np.mean(scores[row])), k))
        by_encode = {m.encode: m for m in updated}
        for row, (child, origin) in enumerate(bred, start=len(st.population)):
            acc = float(np.mean(scores[row]))
            fs = [by_encode[p].fitness for p in origin if by_encode[p].fitness is not None]
            w0 = k / 2 if fs else 0.0
            f0 = float(np.mean(fs)) if fs else 0.0  # type: ignore[arg-type]
            updated.append(Member(child, (w0 * f0 + k * acc) / (w0 + k), w0 + k))
        updated.sort(key=lambda m: -(m.fitness or 0.0))
        st.population = updated[: cfg.population]
        self._log_round("ea")

    def _rescored(self, m: Member, acc: float, k: float) -> Member:
        """``m`` after scoring ``acc`` on ``k`` new tasks: the posterior mean of its fitness,
        earlier rounds weighing ``fitness_memory`` as much as before."""
        w0 = self.config.fitness_memory * m.weight if m.fitness is not None else 0.0
        f0 = m.fitness or 0.0
        return Member(m.encode, (w0 * f0 + k * acc) / (w0 + k), w0 + k)

    def final_round(self, kind: str = "final") -> Encode:
        """A last, larger selection round: the population and the widest path, scored on
        ``final_tasks`` fresh fitness tasks (no offspring), their fitness updated as in
        :meth:`evolve`. One EA round's 4 tasks rank members at +-4 points of noise; this one
        decides the encode that the focus phase trains and the search starts from; it is
        returned (see :func:`frugal_pick` for ``final_pick="frugal"``, which also scores the
        uniform paths of every width; ``final_widen`` then widens the pick's cheap layers,
        see :func:`atnas.population.widen_cheap_layers`). At the end of a focused run it
        re-scores the members; the focused encode still leads (:meth:`MetaState.ranked`)."""
        cfg, st = self.config, self.state
        assert self.fitness is not None
        began = time.perf_counter()
        frugal = cfg.final_pick == "frugal" and kind == "final"
        extra = uniform_paths(self.explored) if frugal else [widest(self.explored)]
        members = list(st.population)
        known = {m.encode for m in members}
        members += [Member(e) for e in extra if e not in known]
        tasks = [self.fitness.sample(self.rng) for _ in range(cfg.final_tasks)]
        encodes = [m.encode for m in members]
        scores = self._accuracies(encodes, tasks)
        k = float(cfg.final_tasks)
        updated = [
            self._rescored(m, float(np.mean(scores[row])), k) for row, m in enumerate(members)
        ]
        chosen = max(updated, key=lambda m: m.fitness or 0.0).encode
        if kind == "closing" and st.focus is not None:
            chosen = st.focus  # it leads the ranking (and the history line) to the end
        if frugal:
            chosen = encodes[frugal_pick(scores, [self._cost(e) for e in encodes])]
        if kind == "final" and (cfg.final_widen > 0.0 or cfg.widen_limit == "conv4"):
            picked = next(m for m in updated if m.encode == chosen)
            at_conv4 = cfg.widen_limit == "conv4"
            chosen = widen_cheap_layers(
                st.space,
                chosen,
                self._cost,
                cfg.final_widen,
                base=self._cost(widest(self.explored)) if at_conv4 else None,
                narrow_first=at_conv4,
            )
            if chosen != picked.encode and all(m.encode != chosen for m in updated):
                updated.append(Member(chosen, picked.fitness, picked.weight))  # its parent's
        updated.sort(key=lambda m: (m.encode != chosen, -(m.fitness or 0.0)))
        st.population = updated[: cfg.population]
        if kind == "final":
            st.final_seconds = time.perf_counter() - began
        self._log_round(kind)
        return chosen

    def begin_focus(self) -> None:
        """Ends the evolution: after a final round (if asked), the encode it picks (else the
        fittest) alone trains every slot of every meta-batch for the rest of the budget."""
        st = self.state
        st.focus = self.final_round() if self.config.final_tasks > 0 else st.ranked()[0].encode
        log.info("focus from iteration %d on %s", st.iteration, st.focus.key())
        if self.config.widen_init == "copy":
            trained = self.explored.max_width
            layers = warm_widened(st.supernet, st.focus, trained, seed=self.config.seed)
            if layers:
                log.info("layers %s widened past %d from trained channels", layers, trained)

    def _log_round(self, kind: str) -> None:
        st = self.state
        st.ea_history.append(
            {
                "kind": kind,
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
        should_stop: Callable[[], bool] | None = None,
    ) -> MetaState:
        """Trains until the budget is spent; checkpoints every ``checkpoint_every`` iterations.

        ``on_progress`` is called after every iteration (on each worker that passes one, with
        the loss and accuracy of the whole meta-batch). The run stops with
        :class:`atnas.errors.Cancelled`, after a final checkpoint, once ``should_stop``
        returns True or ``on_progress`` raises ``Cancelled`` on any worker: the workers agree
        on it (and on the end of the time budget) before every iteration, so none is left
        waiting in a collective call. Only rank 0 writes ``checkpoint_path``.
        """
        cfg, st, col = self.config, self.state, self.collective
        if col.world > 1 and not same_everywhere(col, self._fingerprint()):
            raise CheckpointError(
                "the workers do not start from the same state: every worker must resume "
                "the same checkpoint (or none)"
            )
        writes = checkpoint_path if col.rank == 0 else None
        started, elapsed0 = time.perf_counter(), st.elapsed
        cancelled: Cancelled | None = None
        try:
            while True:
                stop = cancelled is not None or (should_stop is not None and should_stop())
                spent = self._spent(started, elapsed0)
                focus = self._focus_due(spent)
                stop, done, focus, spent = self._agree(
                    stop, self._done(started, elapsed0), focus, spent
                )
                if stop:
                    raise cancelled or Cancelled("meta-training was stopped")
                if done:
                    break
                if focus:
                    self.begin_focus()
                for group in self.optimizer.param_groups:
                    group["lr"] = meta_lr_at(cfg, spent)
                loss, acc = self.meta_step()
                st.iteration += 1
                evolving = cfg.fixed_encode is None and st.focus is None
                if evolving and st.iteration % cfg.ea_every == 0:
                    self.evolve()
                st.elapsed = elapsed0 + time.perf_counter() - started
                st.curve.append(
                    {"iteration": st.iteration, "elapsed": st.elapsed, "loss": loss, "acc": acc}
                )
                if writes is not None and st.iteration % cfg.checkpoint_every == 0:
                    self.save(writes)
                if on_progress is not None:
                    try:
                        on_progress(self._progress(loss, acc))
                    except Cancelled as exc:
                        cancelled = exc  # the workers stop together, before the next step
        finally:
            st.elapsed = elapsed0 + time.perf_counter() - started
            if writes is not None:
                self.save(writes)
        if cfg.fixed_encode is None:
            if st.focus is None and all(m.fitness is None for m in st.population):
                self.evolve()  # a run too short for one EA round still ranks its population
            if cfg.final_tasks > 0:
                # Before a focus phase the final round picked the focus; this closing one
                # re-scores every member on the weights as they end (the focused encode
                # trained alone since), so the priors of a per-task search are current.
                self.final_round("closing" if st.focus is not None else "final")
            st.elapsed = elapsed0 + time.perf_counter() - started
            if writes is not None:
                self.save(writes)
        return st

    def _spent(self, started: float, elapsed0: float) -> float:
        """The share of the budget used so far: of its time or its iterations, whichever is
        further along."""
        cfg, st = self.config, self.state
        spent = 0.0
        if cfg.iterations is not None:
            spent = st.iteration / cfg.iterations
        if cfg.budget_seconds is not None:
            elapsed = elapsed0 + time.perf_counter() - started
            spent = max(spent, elapsed / cfg.budget_seconds)
        return spent

    def _focus_due(self, spent: float) -> bool:
        """Whether the focus phase should begin now (the last ``focus`` share of the budget)."""
        cfg, st = self.config, self.state
        if cfg.fixed_encode is not None or cfg.focus <= 0.0 or st.focus is not None:
            return False
        return spent >= 1.0 - cfg.focus

    def _agree(
        self, stop: bool, done: bool, focus: bool, spent: float
    ) -> tuple[bool, bool, bool, float]:
        """(stop, done, focus) as agreed by all workers (raised by any of them), and the
        workers' mean share of the budget spent, so that all step at the same rate."""
        col = self.collective
        if col.world == 1:
            return stop, done, focus, spent
        flags = torch.tensor(
            [float(stop), float(done), float(focus), spent], dtype=torch.float64, device=col.device
        )
        col.all_reduce_sum_(flags)
        agreed = [float(v) for v in flags.tolist()]
        return agreed[0] > 0, agreed[1] > 0, agreed[2] > 0, agreed[3] / col.world

    def _progress(self, loss: float, acc: float) -> Progress:
        cfg, st = self.config, self.state
        return Progress(
            st.iteration,
            cfg.iterations,
            st.elapsed,
            cfg.budget_seconds,
            loss,
            acc,
            st.ranked()[0].fitness,
            list(st.population),
        )
