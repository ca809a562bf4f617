"""Meta-training: iterations and budgets, evolution, checkpoints, resume, progress, cancel."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from atnas.cost import arch_cost
from atnas.errors import Cancelled, CheckpointError, ConfigError, EncodeError
from atnas.learner import InnerConfig
from atnas.limits import CostLimits
from atnas.meta import MetaAlgorithm
from atnas.metatrain import (
    MetaState,
    MetaTrainConfig,
    MetaTrainer,
    Progress,
    frugal_pick,
    initial_population,
    meta_lr_at,
    slot_rng,
    widest,
)
from atnas.population import uniform_paths, widen_cheap_layers
from atnas.space import Encode, SearchSpace
from atnas.tasks import Task, TaskSampler
from tests.atnas.conftest import synthetic_images

SPACE = SearchSpace(num_layers=3, widths=(4, 8))
CFG = MetaTrainConfig(
    way=3,
    shot=1,
    query=2,
    rotations=False,
    image_size=8,
    inner=InnerConfig(steps=1, lr=0.2),
    meta_batch=2,
    population=3,
    offspring=2,
    ea_every=2,
    ea_tasks=1,
    explore=0.5,
    budget_seconds=None,
    iterations=6,
    checkpoint_every=3,
    seed=0,
)


def _samplers() -> tuple[TaskSampler, TaskSampler]:
    train = TaskSampler(synthetic_images(6, 4, size=8, seed=0), 3, 1, 2)
    fitness = TaskSampler(synthetic_images(4, 4, size=8, seed=1), 3, 1, 2)
    return train, fitness


def _trainer(cfg: MetaTrainConfig = CFG) -> MetaTrainer:
    return MetaTrainer(SPACE, cfg, *_samplers())


def _widening_trainer(space: SearchSpace, **changes: Any) -> MetaTrainer:
    """A short focused run that explores widths up to 8 of ``space`` (widths 4, 8, 16) and
    ends in a final round whose widening may go past them (``changes`` set how)."""
    cfg = dataclasses.replace(
        CFG, meta_batch=3, iterations=6, focus=0.5, final_tasks=2, explore_width=8, **changes
    )
    return MetaTrainer(space, cfg, *_samplers())


def _assert_same_state(a: MetaState, b: MetaState, exact: bool = False) -> None:
    sa, sb = a.supernet.state_dict(), b.supernet.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        if exact:
            assert torch.equal(sa[k], sb[k]), k
        else:
            assert torch.allclose(sa[k], sb[k], atol=1e-6, rtol=1e-5), k
    assert [(m.encode, m.fitness) for m in a.population] == [
        (m.encode, m.fitness) for m in b.population
    ]
    assert a.iteration == b.iteration
    assert a.ea_history == b.ea_history
    assert [c["iteration"] for c in a.curve] == [c["iteration"] for c in b.curve]
    for key in ("loss", "acc"):
        assert [c[key] for c in a.curve] == pytest.approx([c[key] for c in b.curve], rel=1e-5)


def test_run_counts_iterations_evolves_and_records() -> None:
    seen: list[Progress] = []
    trainer = _trainer()
    before = {k: v.clone() for k, v in trainer.state.supernet.state_dict().items()}
    state = trainer.run(on_progress=seen.append)
    assert state.iteration == 6
    assert [p.iteration for p in seen] == [1, 2, 3, 4, 5, 6]
    assert all(p.total == 6 and p.phase == "meta_train" for p in seen)
    assert all(0.0 <= p.acc <= 1.0 and p.loss > 0 for p in seen)
    assert seen[0].best_fitness is None and seen[1].best_fitness is not None  # first EA at 2
    assert [h["iteration"] for h in state.ea_history] == [2, 4, 6]
    assert len(state.population) == 3 == len({m.encode for m in state.population})
    assert all(SPACE.is_valid(m.encode) and m.fitness is not None for m in state.population)
    fits = [m.fitness for m in state.population]
    assert fits == sorted(fits, reverse=True)
    assert state.best_encode() == state.population[0].encode
    assert [c["iteration"] for c in state.curve] == list(range(1, 7))
    changed = [k for k, v in state.supernet.state_dict().items() if not torch.equal(v, before[k])]
    assert changed  # the weights learned something


def test_same_seed_same_run() -> None:
    _assert_same_state(_trainer().run(), _trainer().run(), exact=True)


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    ckpt = tmp_path / "run" / "meta.pt"
    state = _trainer().run(checkpoint_path=ckpt)
    loaded, extra = MetaState.load(ckpt)
    _assert_same_state(state, loaded, exact=True)
    assert loaded.space == SPACE and loaded.config == CFG
    assert loaded.elapsed == pytest.approx(state.elapsed)
    assert {"optimizer", "rng"} <= set(extra)
    assert not [p for p in ckpt.parent.iterdir() if p.name != "meta.pt"]  # no temp files left


def test_checkpoint_matches_the_returned_state_when_no_ea_round_ran(tmp_path: Path) -> None:
    ckpt = tmp_path / "meta.pt"
    state = _trainer(dataclasses.replace(CFG, iterations=3, ea_every=50)).run(checkpoint_path=ckpt)
    loaded, _ = MetaState.load(ckpt)
    assert [(m.encode, m.fitness) for m in loaded.population] == [
        (m.encode, m.fitness) for m in state.population
    ]


@pytest.mark.slow
def test_resume_continues_the_same_run(tmp_path: Path) -> None:
    straight = _trainer().run()
    ckpt = tmp_path / "meta.pt"
    half = _trainer(dataclasses.replace(CFG, iterations=3)).run(checkpoint_path=ckpt)
    assert half.iteration == 3
    resumed = MetaTrainer.resume(ckpt, CFG, *_samplers())
    assert resumed.state.iteration == 3
    final = resumed.run(checkpoint_path=ckpt)
    _assert_same_state(straight, final)
    _assert_same_state(final, MetaState.load(ckpt)[0], exact=True)


@pytest.mark.parametrize(
    "change",
    [{"meta_lr": 0.01}, {"way": 2}, {"seed": 1}, {"algorithm": MetaAlgorithm.REPTILE}],
    ids=lambda c: next(iter(c)),
)
def test_resume_with_other_settings_is_refused(tmp_path: Path, change: dict) -> None:
    ckpt = tmp_path / "meta.pt"
    _trainer(dataclasses.replace(CFG, iterations=1)).run(checkpoint_path=ckpt)
    with pytest.raises(CheckpointError, match="other settings"):
        MetaTrainer.resume(ckpt, dataclasses.replace(CFG, **change), *_samplers())
    # budgets may change
    ok = dataclasses.replace(CFG, iterations=9, budget_seconds=100.0, checkpoint_every=7)
    assert MetaTrainer.resume(ckpt, ok, *_samplers()).config == ok


def test_progress_callback_can_cancel_and_a_checkpoint_is_written(tmp_path: Path) -> None:
    ckpt = tmp_path / "meta.pt"
    seen: list[int] = []

    def stop_at_two(p: Progress) -> None:
        seen.append(p.iteration)
        if p.iteration == 2:
            raise Cancelled("stop")

    cfg = dataclasses.replace(CFG, iterations=50, checkpoint_every=100)
    with pytest.raises(Cancelled):
        _trainer(cfg).run(on_progress=stop_at_two, checkpoint_path=ckpt)
    assert seen == [1, 2]
    state, _ = MetaState.load(ckpt)
    assert state.iteration == 2 and len(state.curve) == 2
    # and the cancelled run can be resumed
    resumed = MetaTrainer.resume(ckpt, dataclasses.replace(cfg, iterations=3), *_samplers())
    assert resumed.run().iteration == 3


def test_wall_clock_budget_stops_the_run() -> None:
    cfg = dataclasses.replace(CFG, iterations=None, budget_seconds=1e-3)
    state = _trainer(cfg).run()
    assert 1 <= state.iteration <= 3
    assert state.elapsed >= 1e-3


def test_a_run_too_short_for_an_ea_round_still_ranks_its_population() -> None:
    state = _trainer(dataclasses.replace(CFG, iterations=1, ea_every=50)).run()
    assert all(m.fitness is not None for m in state.population)


@pytest.mark.parametrize("algorithm", list(MetaAlgorithm))
def test_every_meta_algorithm_trains(algorithm: MetaAlgorithm) -> None:
    state = _trainer(dataclasses.replace(CFG, iterations=2, algorithm=algorithm)).run()
    assert state.iteration == 2
    assert all(torch.isfinite(v).all() for v in state.supernet.state_dict().values())


def test_fixed_encode_baseline_does_not_evolve() -> None:
    conv = SPACE.conv4()
    cfg = dataclasses.replace(CFG, fixed_encode=conv, iterations=3)
    state = MetaTrainer(SPACE, cfg, _samplers()[0], None).run()
    assert [m.encode for m in state.population] == [conv]
    assert state.ea_history == [] and state.best_encode() == conv
    with pytest.raises(EncodeError):
        bad = dataclasses.replace(CFG, fixed_encode=Encode.of(("identity", 4)))
        MetaTrainer(SPACE, bad, _samplers()[0], None)


def test_evolution_needs_a_fitness_sampler() -> None:
    with pytest.raises(ConfigError, match="fitness"):
        MetaTrainer(SPACE, CFG, _samplers()[0], None)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"budget_seconds": None, "iterations": None},
        {"budget_seconds": 0.0},
        {"iterations": 0},
        {"meta_batch": 0},
        {"population": 0},
        {"explore": 1.5},
        {"focus": 1.0},
        {"final_tasks": -1},
    ],
)
def test_bad_meta_train_config(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        dataclasses.replace(CFG, **kwargs)


def test_config_json_round_trip() -> None:
    cfg = dataclasses.replace(CFG, fixed_encode=SPACE.conv4(), algorithm=MetaAlgorithm.MAML)
    import json

    assert MetaTrainConfig.from_json(json.loads(json.dumps(cfg.to_json()))) == cfg
    assert "iterations" not in cfg.run_identity() and "meta_lr" in cfg.run_identity()


def test_sandwich_trains_the_widest_and_a_narrowest_path_every_meta_batch() -> None:
    cfg = dataclasses.replace(CFG, meta_batch=3, explore=0.0)
    trainer = _trainer(cfg)
    picked = [trainer._pick_encode(slot, slot_rng(0, 0, slot)) for slot in range(cfg.meta_batch)]
    assert picked[0] == widest(SPACE) == SPACE.conv4()
    assert all(c.width == SPACE.widths[0] for c in picked[1].layers)
    trainer.meta_step()
    conv4_w = trainer.state.supernet.weights_["l2__conv3x3__w"].grad
    assert conv4_w is not None and conv4_w[4:].abs().sum() > 0  # the widest channels learn
    off = _trainer(dataclasses.replace(cfg, sandwich=False))
    members = {m.encode for m in off.state.population}
    assert all(
        off._pick_encode(slot, slot_rng(0, 0, slot)) in members for slot in range(cfg.meta_batch)
    )


def test_fitness_accumulates_over_rounds_and_children_start_from_their_parents() -> None:
    trainer = _trainer(dataclasses.replace(CFG, explore=0.0, ea_tasks=2))
    trainer.evolve()
    first = {m.encode: m for m in trainer.state.population}
    assert all(m.fitness is not None and m.weight > 0 for m in first.values())
    trainer.evolve()
    for m in trainer.state.population:
        if m.encode in first:  # a survivor: its weight grew, decayed by fitness_memory
            was = first[m.encode].weight
            assert m.weight == pytest.approx(CFG.fitness_memory * was + 2)
    ranked = [m.fitness for m in trainer.state.population]
    assert ranked == sorted(ranked, reverse=True)


def test_initial_population_is_bounded_by_the_space() -> None:
    tiny = SearchSpace(num_layers=1, ops=("conv3x3",), widths=(4, 8))  # two encodes in all
    pop = initial_population(tiny, 5, np.random.default_rng(0))
    assert sorted(pop, key=str) == sorted(
        [Encode.of(("conv3x3", 4)), Encode.of(("conv3x3", 8))], key=str
    )


def test_the_preset_name_travels_with_the_run_and_chooses_the_search_settings() -> None:
    from atnas import pipeline
    from atnas.presets import PRESETS

    images = synthetic_images(40, 3, size=8, seed=0)
    state = pipeline.meta_train(
        images, "tiny", iterations=1, budget_seconds=None, way=3, rotations=False, image_size=8
    )
    assert state.config.preset == "tiny"
    assert pipeline.search_defaults(state) == PRESETS["tiny"].search
    # a focused supernet: no cost limits -> only the focused encode is scored and adapted
    state.focus = state.best_encode()
    focused = pipeline.search_defaults(state)
    assert (focused.population, focused.generations, focused.seed_top) == (1, 0, 1)
    assert pipeline.search_defaults(state, CostLimits()) == focused
    assert pipeline.search_defaults(state, CostLimits(max_macs=10**6)) == PRESETS["tiny"].search


def test_focus_ends_evolution_with_a_final_round_and_trains_the_choice_alone(
    tmp_path: Path,
) -> None:
    cfg = dataclasses.replace(CFG, iterations=8, focus=0.5, final_tasks=3, explore=0.0)
    ckpt = tmp_path / "meta.pt"
    trainer = _trainer(cfg)
    state = trainer.run(checkpoint_path=ckpt)
    rounds = [(h["kind"], h["iteration"]) for h in state.ea_history]
    # no EA round during the focus; a closing round re-scores the members on the final weights
    assert rounds == [("ea", 2), ("ea", 4), ("final", 4), ("closing", 8)]
    assert state.focus is not None and state.best_encode() == state.focus
    assert state.ea_history[-1]["best_encode"] == state.focus.key()  # the closing line too
    assert state.population[0].encode == state.focus
    picked = {trainer._pick_encode(s, slot_rng(0, 9, s)) for s in range(cfg.meta_batch)}
    assert picked == {state.focus}  # every slot trains the focus encode
    loaded, _ = MetaState.load(ckpt)
    assert loaded.focus == state.focus and loaded.best_encode() == state.focus
    assert loaded.final_seconds == state.final_seconds > 0.0  # a resumed run keeps its reserve


def test_a_time_budget_keeps_the_final_rounds_time_for_the_closing_round() -> None:
    cfg = dataclasses.replace(
        CFG, iterations=None, budget_seconds=10.0, focus=0.5, final_tasks=3, explore=0.0
    )
    trainer = _trainer(cfg)
    assert trainer._closing_reserve() == 0.0  # no focus yet: no closing round to keep time for
    trainer.begin_focus()
    assert trainer.state.ea_history[-1]["kind"] == "final" and trainer.state.final_seconds > 0.0
    trainer.state.final_seconds = 4.0  # as if the final round had taken 4 s
    assert trainer._closing_reserve() == 4.0
    now = time.perf_counter()
    assert not trainer._done(now, 5.0)  # 5 s spent + 4 kept < 10 s
    assert trainer._done(now, 6.5)  # 6.5 s + 4 s >= 10 s: stop now, the closing round fits
    unbudgeted = _trainer(dataclasses.replace(cfg, budget_seconds=None, iterations=5))
    unbudgeted.state.focus = trainer.state.focus
    assert not unbudgeted._done(now, 1e6)  # an iteration budget is not cut


def test_a_final_round_scores_members_on_more_tasks() -> None:
    trainer = _trainer(dataclasses.replace(CFG, final_tasks=5, explore=0.0))
    trainer.evolve()
    before = {m.encode: m.weight for m in trainer.state.population}
    trainer.final_round()
    for m in trainer.state.population:
        was = before.get(m.encode)
        expected = 5.0 if was is None else CFG.fitness_memory * was + 5.0
        assert m.weight == pytest.approx(expected)
    assert trainer.state.ea_history[-1]["kind"] == "final"


def test_focus_resumes_where_it_stopped(tmp_path: Path) -> None:
    cfg = dataclasses.replace(CFG, iterations=8, focus=0.5, final_tasks=2)
    straight = _trainer(cfg).run()
    ckpt = tmp_path / "meta.pt"

    def stop_at_6(p: Progress) -> None:
        if p.iteration == 6:
            raise Cancelled("stop")

    with pytest.raises(Cancelled):
        _trainer(cfg).run(stop_at_6, checkpoint_path=ckpt)
    assert MetaState.load(ckpt)[0].focus == straight.focus  # saved during the focus phase
    final = MetaTrainer.resume(ckpt, cfg, *_samplers()).run()
    assert final.focus == straight.focus
    _assert_same_state(straight, final)


def test_frugal_pick_takes_the_cheapest_candidate_tied_with_the_best() -> None:
    rng = np.random.default_rng(0)
    base = rng.uniform(0.3, 0.9, size=40)  # the tasks' difficulty, shared by every candidate
    scores = np.stack([base + 0.02, base + rng.normal(0, 0.01, 40), base - 0.2])
    # row 1 is 2 points behind with tiny per-task noise: many standard errors, so the best
    # (row 0) is kept although row 1 is cheaper
    assert frugal_pick(scores, [3.0, 1.0, 0.5]) == 0
    noisy = np.stack([base + 0.01, base + rng.normal(0, 0.2, 40), base - 0.2])
    assert frugal_pick(noisy, [3.0, 1.0, 0.5]) == 1  # within one SE: the cheaper one
    assert frugal_pick(noisy, [1.0, 3.0, 0.5]) == 0  # the best is also the cheapest
    assert frugal_pick(scores[:, :1], [3.0, 1.0, 0.5]) == 0  # one task: no SE, the best


def test_uniform_paths_are_the_fixed_nets_of_every_width() -> None:
    paths = uniform_paths(SPACE)
    assert [p.key() for p in paths] == ["conv3x3:4|conv3x3:4|conv3x3:4", SPACE.conv4().key()]
    assert all(SPACE.is_valid(p) for p in paths)


def test_a_frugal_final_round_also_scores_the_uniform_paths_and_focuses_on_its_pick() -> None:
    cfg = dataclasses.replace(
        CFG, iterations=4, focus=0.5, final_tasks=4, final_pick="frugal", explore=0.0
    )
    trainer = _trainer(cfg)
    scored: list[list[Encode]] = []
    score_all = trainer._accuracies

    def spy(encodes: list[Encode], tasks: list[Task]) -> np.ndarray:
        scored.append(list(encodes))
        return score_all(encodes, tasks)

    trainer._accuracies = spy  # type: ignore[method-assign]
    state = trainer.run()
    assert set(uniform_paths(SPACE)) <= set(scored[-2])  # the final round (before the closing)
    final = next(h for h in state.ea_history if h["kind"] == "final")
    assert state.focus is not None and final["best_encode"] == state.focus.key()
    assert state.best_encode() == state.focus
    assert len(state.population) == cfg.population
    with pytest.raises(ConfigError, match="final_pick"):
        dataclasses.replace(CFG, final_pick="cheapest")


def test_widening_takes_the_late_layers_where_they_are_nearly_free() -> None:
    space = SearchSpace(ops=("conv3x3",))  # the default preset's space, 28 px, 5-way

    def train_cost(e: Encode) -> float:  # the trainer's model: MACs + a fixed task overhead
        return arch_cost(space, e, 28, 5).flops + 2e6

    pick = Encode.of(("conv3x3", 32), ("conv3x3", 48), ("conv3x3", 64), ("conv3x3", 16))
    wider = widen_cheap_layers(space, pick, train_cost, 0.1)
    assert wider.key() == "conv3x3:32|conv3x3:48|conv3x3:64|conv3x3:64"
    assert train_cost(wider) <= 1.1 * train_cost(pick)
    assert widen_cheap_layers(space, pick, train_cost, 0.0) == pick
    assert widen_cheap_layers(space, space.conv4(), train_cost, 1.0) == space.conv4()
    # layer 1 is too dear at +10% (its 28x28 and 14x14 maps), everything is at +100%
    assert widen_cheap_layers(space, pick, train_cost, 1.0) == space.conv4()


def test_widening_at_conv4s_cost_pays_with_the_first_layer() -> None:
    space = SearchSpace(ops=("conv3x3",), widths=(16, 32, 48, 64, 128))  # late128's

    def train_cost(e: Encode) -> float:
        return arch_cost(space, e, 28, 5).flops + 2e6

    def widths(*ws: int) -> Encode:
        return Encode.of(*[("conv3x3", w) for w in ws])

    base = train_cost(widths(64, 64, 64, 64))  # Conv-4 at the explored width

    def fit(e: Encode) -> Encode:
        return widen_cheap_layers(space, e, train_cost, 0.0, base=base, narrow_first=True)

    # Conv-4/64 itself: the late layers go to 128, the first layer halves to pay for them
    assert fit(widths(64, 64, 64, 64)) == widths(32, 64, 128, 128)
    assert fit(widths(64, 48, 64, 64)) == widths(48, 48, 128, 128)  # 48 is the widest that fits
    assert fit(widths(32, 32, 32, 32)) == widths(32, 32, 128, 128)  # cheap picks just widen
    for pick in (widths(64, 64, 64, 64), widths(16, 32, 48, 64), widths(48, 64, 64, 48)):
        assert train_cost(fit(pick)) <= base
        assert fit(pick).layers[0].width >= pick.layers[0].width / 2  # never below half
    # without the first layer's help the widening stops where the limit does
    plain = widen_cheap_layers(space, widths(64, 64, 64, 64), train_cost, 0.0, base=base)
    assert plain == widths(64, 64, 64, 64)
    # the first layer cannot pay: a pick of width 16 there keeps its width
    assert fit(widths(16, 64, 64, 64)).layers[0].width == 16


def test_the_trainer_widens_within_conv4s_cost_when_asked() -> None:
    space = SearchSpace(num_layers=3, ops=("conv3x3",), widths=(4, 8, 16))
    trainer = _widening_trainer(space, widen_limit="conv4")

    def cost(encode: Encode) -> float:  # early layers dear, late ones cheap, as on images
        first, middle, last = (c.width for c in encode.layers)
        return 3.0 * first + middle + last / 8

    trainer._cost = cost  # type: ignore[method-assign]
    state = trainer.run()
    assert state.focus is not None and space.is_valid(state.focus)
    assert cost(state.focus) <= 3 * 8 + 8 + 1  # Conv-4 at the explored width 8
    assert state.focus.layers[-1].width == 16  # the last layer is always paid for
    with pytest.raises(ConfigError, match="widen_limit"):
        dataclasses.replace(CFG, widen_limit="macs")


def test_widening_keeps_the_encode_valid() -> None:
    free = lambda e: 0.0  # noqa: E731
    enc = Encode.of(("conv3x3", 4), ("identity", 4), ("conv3x3", 4))
    # the identity cannot widen alone, and widening layer 0 would break it
    assert widen_cheap_layers(SPACE, enc, free, 1.0).key() == "conv3x3:4|identity:4|conv3x3:8"


def test_a_widening_final_round_focuses_on_the_widened_pick() -> None:
    cfg = dataclasses.replace(CFG, iterations=4, focus=0.5, final_tasks=4, final_widen=1.0)
    trainer = _trainer(cfg)
    trainer._cost = lambda e: 1.0  # type: ignore[method-assign]  # every width is free
    state = trainer.run()
    assert state.focus is not None and all(
        c.width == 8 or c.op == "identity" for c in state.focus.layers
    )
    assert SPACE.is_valid(state.focus)
    assert state.best_encode() == state.focus and state.focus in {
        m.encode for m in state.population
    }
    assert len(state.population) == cfg.population
    with pytest.raises(ConfigError, match="final_widen"):
        dataclasses.replace(CFG, final_widen=-0.1)


def test_the_evolution_stays_within_explore_width_and_the_widening_goes_beyond() -> None:
    space = SearchSpace(num_layers=3, widths=(4, 8, 16))
    trainer = _widening_trainer(space, final_widen=1.0)
    trainer._cost = lambda e: 1.0  # type: ignore[method-assign]  # every width is free
    trained: list[Encode] = []
    pick = trainer._pick_encode

    def recording(slot: int, rng: np.random.Generator) -> Encode:
        encode = pick(slot, rng)
        if trainer.state.focus is None:
            trained.append(encode)
        return encode

    trainer._pick_encode = recording  # type: ignore[method-assign]
    state = trainer.run()
    assert trained and max(c.width for e in trained for c in e.layers) == 8  # the sandwich's
    assert state.focus is not None and space.is_valid(state.focus)
    assert any(c.width == 16 for c in state.focus.layers)  # reached by the final widening only
    with pytest.raises(EncodeError, match="no width"):
        MetaTrainer(space, dataclasses.replace(CFG, explore_width=2), *_samplers())
    with pytest.raises(ConfigError, match="explore_width"):
        dataclasses.replace(CFG, explore_width=0)


def test_a_checkpoint_saved_before_the_learned_rates_resumes_the_same_run(tmp_path: Path) -> None:
    # A run checkpointed by a version whose supernet had no ``log_rates`` (and whose optimiser
    # state therefore lacks that parameter) resumes exactly as today's checkpoint does.
    ckpt = tmp_path / "meta.pt"
    _trainer(dataclasses.replace(CFG, iterations=3)).run(checkpoint_path=ckpt)
    data = torch.load(ckpt, weights_only=True)
    data["supernet"].pop("log_rates")
    opt = data["extra"]["optimizer"]
    assert opt["param_groups"][0]["params"][0] == 0 and 0 not in opt["state"]  # no grad yet
    opt["state"] = {k - 1: v for k, v in opt["state"].items()}
    opt["param_groups"][0]["params"] = opt["param_groups"][0]["params"][1:]
    opt["param_groups"][0]["params"] = [i - 1 for i in opt["param_groups"][0]["params"]]
    data["config"]["inner"].pop("learn_rates")
    old = tmp_path / "old.pt"
    torch.save(data, old)
    today = MetaTrainer.resume(ckpt, CFG, *_samplers()).run()
    before = MetaTrainer.resume(old, CFG, *_samplers()).run()
    _assert_same_state(today, before, exact=True)


def test_the_cosine_schedule_falls_from_meta_lr_to_zero_over_the_budget() -> None:
    cos = dataclasses.replace(CFG, meta_lr=0.01, meta_lr_schedule="cosine")
    assert meta_lr_at(cos, 0.0) == pytest.approx(0.01)
    assert meta_lr_at(cos, 0.5) == pytest.approx(0.005)
    assert meta_lr_at(cos, 1.0) == pytest.approx(0.0, abs=1e-12)
    assert meta_lr_at(cos, 2.0) == pytest.approx(0.0, abs=1e-12)  # clamped: never negative
    falling = [meta_lr_at(cos, p / 10) for p in range(11)]
    assert falling == sorted(falling, reverse=True)
    assert all(meta_lr_at(CFG, p / 10) == CFG.meta_lr for p in range(11))  # "constant"


def test_a_cosine_run_steps_at_the_scheduled_rate_and_resumes_on_it(tmp_path: Path) -> None:
    cos = dataclasses.replace(CFG, meta_lr_schedule="cosine")  # 6 iterations
    trainer = _trainer(cos)
    rates: list[float] = []
    trainer.run(on_progress=lambda p: rates.append(trainer.optimizer.param_groups[0]["lr"]))
    assert rates == pytest.approx([meta_lr_at(cos, i / 6) for i in range(6)])
    assert rates[0] == CFG.meta_lr and rates[-1] < 0.1 * CFG.meta_lr
    # the schedule changes the run (the constant one ends elsewhere)
    constant = _trainer().run().supernet.state_dict()
    assert any(
        not torch.allclose(v, constant[k]) for k, v in trainer.state.supernet.state_dict().items()
    )

    # stopped half-way and resumed: the same run as the straight one
    ckpt = tmp_path / "meta.pt"

    def stop_at_three(p: Progress) -> None:
        if p.iteration == 3:
            raise Cancelled("stop")

    with pytest.raises(Cancelled):
        _trainer(cos).run(on_progress=stop_at_three, checkpoint_path=ckpt)
    resumed = MetaTrainer.resume(ckpt, cos, *_samplers()).run()
    _assert_same_state(trainer.state, resumed)


def test_an_unknown_meta_lr_schedule_is_refused_and_old_configs_read_as_constant() -> None:
    with pytest.raises(ConfigError, match="meta_lr_schedule"):
        dataclasses.replace(CFG, meta_lr_schedule="step")
    saved = CFG.to_json()
    del saved["meta_lr_schedule"]  # a config saved before the schedule existed
    assert MetaTrainConfig.from_json(saved).meta_lr_schedule == "constant"
    assert "meta_lr_schedule" in CFG.run_identity()  # a resume cannot switch schedules


@pytest.mark.parametrize("lr", [0, -1e-3, float("inf"), float("nan"), "fast", True])
def test_a_meta_lr_that_is_not_a_positive_number_is_refused(lr: object) -> None:
    with pytest.raises(ConfigError, match="meta_lr must be a positive number"):
        dataclasses.replace(CFG, meta_lr=lr)
