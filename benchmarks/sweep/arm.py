"""One arm of benchmarks/sweep/run.sh: meta-train for N seconds with overrides, then score the
best (or fixed) encode on the same meta-validation tasks as every other arm.

Arms name their space with "ops"/"widths"; without them the space is the 7-op one (all
DEFAULT_OPS at widths 16-64), which the sweep of 2026-11-26 compared the others against.

    python benchmarks/sweep/arm.py SECONDS NAME '{"sandwich": false}' images_background.zip
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys

import torch

from atnas import pipeline
from atnas.evaluate import Method, evaluate
from atnas.learner import InnerConfig
from atnas.presets import PRESETS
from atnas.search import SearchConfig
from atnas.space import DEFAULT_OPS, DEFAULT_WIDTHS, Encode, LayerChoice, SearchSpace
from atnas.tasks import TaskSampler

VAL = ["Armenian", "Bengali", "Hebrew", "Korean", "Tifinagh"]


def main() -> None:
    torch.set_num_threads(1)
    secs, name, over, data = float(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
    ops, widths = over.pop("ops", DEFAULT_OPS), over.pop("widths", DEFAULT_WIDTHS)
    space = SearchSpace(ops=tuple(ops), widths=tuple(widths))
    PRESETS["custom"] = dataclasses.replace(PRESETS["search64"], space=space)
    if "inner" in over:
        over["inner"] = InnerConfig(**over["inner"])
    if "conv4" in over:
        w = over.pop("conv4")
        over["fixed_encode"] = Encode(tuple(LayerChoice("conv3x3", w) for _ in range(4)))
    img = pipeline.load_meta_images([data])
    train, val = img.select(exclude=VAL), img.select(include=VAL)
    st = pipeline.meta_train(
        train, "custom", budget_seconds=secs, iterations=None, device=torch.device("cpu"), **over
    )
    res = {"name": name, "it": st.iteration, "best": st.best_encode().key()}
    method = Method.FIXED if st.config.fixed_encode else Method.META_BEST
    inner = st.config.inner
    cfg = SearchConfig(
        inner=dataclasses.replace(inner, steps=5), final_inner=dataclasses.replace(inner, steps=10)
    )
    for way, shot, n in [
        (5, 1, int(os.environ.get("N1", 200))),
        (5, 5, int(os.environ.get("N5", 60))),
    ]:
        s = evaluate(st, TaskSampler(val, way, shot, 15), n, method, cfg, seed=99)
        res[f"{way}w{shot}s"] = round(100 * s.mean_acc, 2)
        res[f"{way}w{shot}s_ci"] = round(100 * s.ci95, 2)
    print(json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
