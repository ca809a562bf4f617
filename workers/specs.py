"""The one place where job specs (pydantic, ``service``) become ``atnas`` configurations."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from atnas.data import ImageConfig
from atnas.limits import CostLimits
from atnas.meta import MetaAlgorithm
from atnas.search import SearchConfig
from service.schemas import MetaTrainSpec, SearchSpec


def image_config(spec: MetaTrainSpec) -> ImageConfig:
    """How the datasets of a meta_train job are decoded."""
    return ImageConfig(spec.image_size, spec.channels)


def meta_train_overrides(spec: MetaTrainSpec) -> dict[str, Any]:
    """Keyword overrides of the preset's meta-training config for ``atnas.pipeline.meta_train``."""
    overrides: dict[str, Any] = {
        "way": spec.way,
        "shot": spec.shot,
        "rotations": spec.rotations,
        "image_size": spec.image_size,
        "algorithm": MetaAlgorithm(spec.algorithm),
        "budget_seconds": spec.budget_seconds,
        "iterations": spec.iterations,
        "seed": spec.seed,
    }
    if spec.query is not None:
        overrides["query"] = spec.query
    return overrides


def search_config(spec: SearchSpec, base: SearchConfig | None = None) -> SearchConfig:
    """The search settings of a search job (population, generations, budget, seed)."""
    cfg = base or SearchConfig()
    changes: dict[str, Any] = {"seed": spec.seed, "budget_seconds": spec.budget_seconds}
    if spec.population is not None:
        changes["population"] = spec.population
        changes["seed_top"] = min(cfg.seed_top, spec.population)
    if spec.generations is not None:
        changes["generations"] = spec.generations
    return replace(cfg, **changes)


def cost_limits(spec: SearchSpec) -> CostLimits | None:
    """The cost bounds of a search job; ``None`` when it has none."""
    if spec.constraints is None:
        return None
    limits = CostLimits(**spec.constraints.model_dump())
    return None if limits.empty else limits
