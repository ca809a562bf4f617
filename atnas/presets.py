"""Named presets: a search space, a meta-training config and a search config that fit together.

- ``tiny``: seconds on a laptop CPU; for tests and smoke runs.
- ``default``: minutes on 2 CPU cores, no search at meta-training time: since 2026-12-06 the
  net of ``smallsep`` (below; 1.49M MACs, 15% of ``dense128``'s), meta-trained alone at 3e-3.
  In one session on the probe alphabets (3 seeds, 600 paired 5w1s and 198 20w1s tasks) it
  scored **+1.02 +- 0.50 (5w1s) / +2.94 +- 0.63 (20w1s)** against ``dense128`` at 20 minutes and
  +3.58 +- 0.63 / +6.55 +- 0.80 at 10, made the default by a rule written before the runs
  (docs/benchmarks.md, "Issue 6, round 32"; round 31, another VM: +1.67 / +2.07 at 10).
  Against Conv-4/64 at 1e-3, one session, the same seeds: +2.94 +- 0.50 / +5.64 +- 0.56 at 20
  minutes and +2.51 +- 0.53 / +4.86 +- 0.62 at 10 ("Issue 6, round 33").
  Search settings (``focus`` ...) are refused for it (:data:`atnas.pipeline.SEARCH_SETTINGS`).
- ``dense128``: the default from 2026-12-04 to 2026-12-06: the net ``32,64,128,128`` (9.90M
  MACs, 3% under Conv-4/64) that ``late128``'s search and widening rule picked on the tuning
  alphabets and on 5 of 6 probe runs, meta-trained alone at 3e-3 (``fixed128`` at 1e-3).
  At 20 minutes on the probe alphabets (3 seeds, 600 paired 5w1s and 198
  20w1s tasks) it scored **+1.29 +- 0.47 (5w1s) / +2.72 +- 0.56 (20w1s)** against the default
  before it (``search64``), decided by a rule written before the runs (docs/benchmarks.md,
  "Issue 6, round 12"); against Conv-4/64 trained alone +2.1 / +3.8 at 10 minutes (round 10)
  and +0.6 +- 0.5 / +2.5 +- 0.6 at 20 (round 12, 3 seeds). Since 2026-12-05 it meta-trains
  at Adam's rate 3e-3 instead of 1e-3 (:data:`DEFAULT_META_LR`): +0.50 +- 0.35 (5w1s) /
  +0.69 +- 0.40 (20w1s) over 1e-3 at 20 minutes, 4 seeds pooled over the tuning and probe
  alphabets, adopted by a rule written before the probe runs (docs/benchmarks.md, "Issue 6,
  round 16"). ``smallsep`` beat it at 10 minutes (round 31) and at 10 and 20 minutes (round 32).
- ``search64``: the default until 2026-12-04, a search at meta-training time. Its space is
  the slimmable Conv-4: conv 3x3 in every layer at a width of 16-64 per layer (the search picks
  the widths). At a 150 s budget, on the meta-validation alphabets, the best encode of this
  space scored 68.3% (5w1s) against 62.2% for the 7-op space, which spreads the same updates
  over 7 ops per layer (docs/results/sweep-2026-11-26.jsonl, benchmarks/sweep/run.sh).
  Its last 85% of the budget is a *focus* phase: after a final selection round on 24 tasks,
  the chosen encode alone trains (see :mod:`atnas.metatrain`). In a 10-minute screen on the
  meta-validation alphabets (3 seeds, 600 paired 5w1s and 198 20w1s tasks; the command is in
  ``benchmarks/sweep/screen.py``) the chosen net scored against Conv-4/64 trained alone:
  focus 0.7 -1.9 (5w1s) / -3.9 (20w1s); **focus 0.85 +1.1 / +2.0**; focus 0.85 with
  ``final_pick="frugal"`` +0.2 / -0.1. Conv-4/32 scored +0.9 / +2.2: the search matches the
  best fixed net of the space, it does not beat it. At 20 minutes (3 seeds) it was
  1.5 / 3.5 under Conv-4/64: its picks kept a 16- or 32-channel last layer. Since round 4 the
  pick widens its cheap late layers within 10% more training cost (``final_widen=0.1``,
  :func:`atnas.population.widen_cheap_layers`): at 20 minutes +1.0 / +2.5 over the unwidened
  pick, still 0.4 / 1.0 under Conv-4/64; at 10 minutes level with it (-0.1 / +0.1).
- ``late128``: ``search64``'s search in the same 16-64 space, then the pick's cheap late layers
  widened to 128 channels within Conv-4/64's training cost, the first layer narrowing (to half
  at most) to pay (``explore_width=64``, ``final_widen=0``, ``widen_limit="conv4"``), the new
  channels starting as copies of trained ones (``widen_init="copy"``, :mod:`atnas.net2wider`).
  At 20 minutes on the probe alphabets (never tuned on; 3 seeds, 600 paired 5w1s and 198 20w1s
  tasks) it picked ``32,64,128,128`` on every seed and scored +0.27 +- 0.39 (5w1s) /
  **+1.47 +- 0.47 (20w1s)** against Conv-4/64 trained alone (docs/benchmarks.md, "Issue 6,
  round 9"; with round 8's widening, 50% over the pick's own cost: +0.2 / +0.5). Its
  ``conv4()`` is Conv-4/128 (the space's widest).
- ``fixed128``: the same net as ``default`` at the earlier meta-rate 1e-3 (kept by name): the net
  ``32,64,128,128`` that ``late128``'s search and widening rule picked on 5 of 6 probe runs
  (rounds 9-10), meta-trained alone in ``late128``'s space (``fixed_encode``); a search job on it
  adapts that net (with cost constraints it searches the space, where only the nets inside
  ``32,64,128,128`` share trained channels). At 10 minutes on the probe alphabets (3 seeds, 600 /
  198 paired tasks) it scored **+2.13 +- 0.47 (5w1s) / +3.78 +- 0.65 (20w1s)** against Conv-4/64
  trained alone, and +3.1 / +4.8 against ``late128`` in the same runs (docs/benchmarks.md, "Issue
  6, round 10"): on 2 CPU cores the search's minutes cost more than it finds, once its answer is
  known.
- ``small128``: the same idea one size down, for a budget of <= 3M MACs per image: the net
  ``16,32,32,128`` (2.10M MACs, 22% under Conv-4/32; 52,101 parameters, 1.8x Conv-4/32's),
  which ``late128``'s rule picked on the tuning alphabets when it explored widths up to 32 and
  widened within Conv-4/32's cost, meta-trained alone. At 10 minutes on the probe alphabets
  (3 seeds, 600 / 198 paired tasks) it scored **+2.92 +- 0.49 (5w1s) / +5.18 +- 0.61 (20w1s)**
  against Conv-4/32 trained alone; that search itself, run per run, +0.1 / -0.2. At 20
  minutes (one probe seed, ~6,000 iterations) the lead was gone: +0.1 / +0.8
  (docs/benchmarks.md, "Issue 6, round 11"): a short-budget preset. Round 18 (2 more probe
  seeds): +1.22 / +3.59 at 10 minutes, -0.37 / +2.38 at 20; ``smallsep`` replaces it for
  <= 3M MACs (kept by name).
- ``smallsep``: for a budget of <= 3M MACs per image since 2026-12-05 (round 19), the default's
  net since 2026-12-06: ``dense128``'s widths ``32,64,128,128`` (found by AT-NAS's search and
  widening rule, rounds 9-10) with layers 2-4 as separable 3x3 convolutions of the space
  (depthwise 3x3, then pointwise 1x1; a step taken by hand, not by the search), meta-trained alone
  at the default's rate 3e-3: **1.49M MACs, 45% under Conv-4/32**, 30,629 parameters (Conv-4/32:
  28,485). On the probe alphabets (3 seeds, 600 / 198 paired tasks) it scored **+2.44 +- 0.54
  (5w1s) / +4.36 +- 0.64 (20w1s)** against Conv-4/32 trained alone at 10 minutes and **+3.39 +-
  0.54 / +6.98 +- 0.68** at 20, by a rule written before the runs (docs/benchmarks.md, "Issue 6,
  round 19"); about 15% fewer iterations per minute than Conv-4/32 on 2 cores. Against Conv-4/32
  at 3e-3 at 10 minutes: +1.40 +- 0.53 / +2.09 +- 0.59 (round 21); against Conv-4/32 at 6e-3 at 20
  minutes only +0.74 +- 0.48 / +1.17 +- 0.60 (round 28), +2.27 +- 0.49 / +3.76 +- 0.61 when the
  same runs were repeated (round 35), +1.50 +- 0.39 / +2.47 +- 0.48 for both rounds averaged per
  task: ahead at 45% of the MACs, by less than the +2 the issue's target asks at 5w1s.
- ``tinysep``: for a budget of about 1M MACs per image or less (round 20): ``conv3x3:16``, then
  separable 3x3 at 32, 64 and 128, meta-trained alone (3e-3 until round 40): **0.54M MACs,
  27% under Conv-4/16**, 13,269 parameters (Conv-4/16: 7,333). On the probe alphabets (3 seeds,
  600 / 198 paired tasks) against Conv-4/16 trained alone at its better rate (3e-3, chosen on the
  tuning alphabets) it scored **+3.24 +- 0.60 (5w1s) / +6.65 +- 0.70 (20w1s)** at 20 minutes
  and +1.55 +- 0.60 / +3.82 +- 0.75 at 10 (docs/benchmarks.md, "Issue 6, round 20"); about 22%
  fewer iterations per minute than Conv-4/16 on 2 cores. Meta-trains at :data:`TINYSEP_META_LR`
  (6e-3) since 2026-12-07: screened on the tuning alphabets (round 39: +0.69 / +1.24 over 3e-3
  at 10 minutes; round 40: -0.13 / +1.23 at 20), then on six probe seeds (rounds 39 and 40) it led
  Conv-4/16 at 3e-3 by **+2.15 +- 0.44 / +4.44 +- 0.54** at 10 minutes (1,200 / 396 paired
  tasks; over the six runs +2.15 +- 1.56 / +4.44 +- 2.12).
- ``wide``: ``search64``'s budget over all 7 ops (conv 5x5, dilated and separable convolutions,
  max-pool + 1x1, identity): for users who can meta-train longer.
- ``paper``: a larger space and budget in the spirit of the paper, meant for a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from atnas.errors import ConfigError
from atnas.learner import InnerConfig
from atnas.metatrain import MetaTrainConfig
from atnas.search import SearchConfig
from atnas.space import DEFAULT_OPS, Encode, LayerChoice, SearchSpace


def _conv3x3_chain(*widths: int) -> Encode:
    return Encode(tuple(LayerChoice("conv3x3", w) for w in widths))


#: The slimmable Conv-4 with a 128-wide option: the space of ``late128`` and of the nets it found.
LATE128_SPACE = SearchSpace(ops=("conv3x3",), widths=(16, 32, 48, 64, 128))
#: The net of ``dense128`` and ``fixed128``: what ``late128`` picked on 5 of its 6 probe runs
#: (rounds 9-10).
FOUND_128 = _conv3x3_chain(32, 64, 128, 128)
#: The net of ``small128``: what ``late128``'s rule at Conv-4/32's cost picked on the tuning
#: alphabets (round 11).
FOUND_SMALL = _conv3x3_chain(16, 32, 32, 128)
#: The space of ``smallsep``: ``late128``'s widths with separable 3x3 convolutions beside conv 3x3.
SEP_SPACE = SearchSpace(ops=("conv3x3", "sepconv3x3"), widths=(16, 32, 48, 64, 128))
#: The net of ``smallsep`` and ``default``: ``dense128``'s widths, layers 2-4 separable (round 19).
FOUND_SEP = Encode.of(("conv3x3", 32), ("sepconv3x3", 64), ("sepconv3x3", 128), ("sepconv3x3", 128))
#: The net of ``tinysep``: ``smallsep``'s first three widths halved, its last kept (round 20).
FOUND_TINYSEP = Encode.of(
    ("conv3x3", 16), ("sepconv3x3", 32), ("sepconv3x3", 64), ("sepconv3x3", 128)
)
#: Adam's rate of the fixed-net presets' meta-training (the library's own default is 1e-3):
#: better for ``dense128``'s net at 20 minutes on 2 cores (issue 6, rounds 15-16).
DEFAULT_META_LR = 3e-3
#: ``tinysep``'s rate: one step above, better for its small net at 10 minutes and level at 20 on
#: the tuning alphabets (issue 6, rounds 39-40); ``smallsep``'s net was worse at 6e-3 (round 26).
TINYSEP_META_LR = 6e-3
#: Tasks per meta-gradient of the default's net (``smallsep``): 4 instead of the library's 8 since
#: 2026-12-07 (issue 6, rounds 41-43): twice the updates for the same compute lift its separable
#: layers at 10 minutes against Conv-4/32 (six runs) and keep the lead on Conv-4/64 at 10 and 20.
DEFAULT_META_BATCH = 4


@dataclass(frozen=True)
class Preset:
    """A named bundle of space, meta-training and search settings."""

    name: str
    space: SearchSpace
    meta: MetaTrainConfig
    search: SearchConfig
    fitness_fraction: float = 0.1  # share of meta-training classes held out for EA fitness


PRESETS: dict[str, Preset] = {
    "tiny": Preset(
        "tiny",
        SearchSpace(num_layers=4, widths=(16, 32)),
        MetaTrainConfig(
            meta_batch=4,
            population=6,
            offspring=4,
            ea_every=10,
            ea_tasks=2,
            budget_seconds=30.0,
            checkpoint_every=20,
        ),
        SearchConfig(population=4, generations=2, seed_top=2),
    ),
    "default": Preset(
        "default",
        SEP_SPACE,
        MetaTrainConfig(
            fixed_encode=FOUND_SEP, meta_lr=DEFAULT_META_LR, meta_batch=DEFAULT_META_BATCH
        ),
        SearchConfig(),
    ),
    "dense128": Preset(
        "dense128",
        LATE128_SPACE,
        MetaTrainConfig(fixed_encode=FOUND_128, meta_lr=DEFAULT_META_LR),
        SearchConfig(),
    ),
    "search64": Preset(
        "search64",
        SearchSpace(ops=("conv3x3",)),
        MetaTrainConfig(focus=0.85, final_tasks=24, final_widen=0.1),
        SearchConfig(),
    ),
    "late128": Preset(
        "late128",
        LATE128_SPACE,
        MetaTrainConfig(
            focus=0.85,
            final_tasks=24,
            final_widen=0.0,
            widen_limit="conv4",
            explore_width=64,
            widen_init="copy",
        ),
        SearchConfig(),
    ),
    "fixed128": Preset(
        "fixed128",
        LATE128_SPACE,
        MetaTrainConfig(fixed_encode=FOUND_128),
        SearchConfig(),
    ),
    "small128": Preset(
        "small128",
        LATE128_SPACE,
        MetaTrainConfig(fixed_encode=FOUND_SMALL),
        SearchConfig(),
    ),
    "smallsep": Preset(
        "smallsep",
        SEP_SPACE,
        MetaTrainConfig(
            fixed_encode=FOUND_SEP, meta_lr=DEFAULT_META_LR, meta_batch=DEFAULT_META_BATCH
        ),
        SearchConfig(),
    ),
    "tinysep": Preset(
        "tinysep",
        SEP_SPACE,
        MetaTrainConfig(fixed_encode=FOUND_TINYSEP, meta_lr=TINYSEP_META_LR),
        SearchConfig(),
    ),
    "wide": Preset(
        "wide",
        SearchSpace(),
        MetaTrainConfig(),
        SearchConfig(),
    ),
    "paper": Preset(
        "paper",
        SearchSpace(num_layers=5, ops=DEFAULT_OPS, widths=(32, 64, 96, 128)),
        MetaTrainConfig(
            meta_batch=32,
            population=32,
            offspring=16,
            ea_every=200,
            ea_tasks=32,
            query=15,
            inner=InnerConfig(steps=5, lr=0.1),
            budget_seconds=8 * 3600.0,
            checkpoint_every=500,
        ),
        SearchConfig(population=16, generations=10, seed_top=8, folds=3, views=4),
        fitness_fraction=0.1,
    ),
}


def get_preset(name: str, channels: int = 1) -> Preset:
    """The preset called ``name`` for images of ``channels`` channels."""
    try:
        preset = PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}") from None
    if channels != preset.space.in_channels:
        preset = replace(preset, space=replace(preset.space, in_channels=channels))
    return preset
