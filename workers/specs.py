"""The one place where job specs (pydantic, ``service``) become ``atnas`` configurations."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from atnas.data import ImageConfig
from atnas.limits import CostLimits
from atnas.meta import MetaAlgorithm
from atnas.search import SearchConfig
from service.schemas import MetaTrainSpec, SearchSpec
from service.settings import Settings


def image_config(spec: MetaTrainSpec, limits: tuple[int, int] | None = None) -> ImageConfig:
    """How the datasets of a meta_train job are decoded; ``limits`` is
    :func:`decode_limits` of the dispatcher's settings (default: the library's)."""
    if limits is None:
        return ImageConfig(spec.image_size, spec.channels)
    return ImageConfig(spec.image_size, spec.channels, max_pixels=limits[0], max_bytes=limits[1])


def decode_limits(settings: Settings) -> tuple[int, int]:
    """(pixels, bytes) of one image that a worker decodes at most: the upload limits
    (``ATNAS_MAX_IMAGE_PIXELS``, ``ATNAS_MAX_IMAGE_BYTES``), so that raising them for the API
    raises them for the workers too."""
    return settings.max_image_pixels, settings.max_image_bytes


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
    if spec.focus is not None:
        overrides["focus"] = spec.focus
    if spec.final_pick is not None:
        overrides["final_pick"] = spec.final_pick
    if spec.final_widen is not None:
        overrides["final_widen"] = spec.final_widen
    if spec.widen_limit is not None:
        overrides["widen_limit"] = spec.widen_limit
    if spec.task_styles is not None:
        overrides["task_styles"] = spec.task_styles
    return overrides


def search_config(spec: SearchSpec, base: SearchConfig | None = None) -> SearchConfig:
    """The search settings of a search job (population, generations, budget, seed, pixels)."""
    cfg = base or SearchConfig()
    changes: dict[str, Any] = {
        "seed": spec.seed,
        "budget_seconds": spec.budget_seconds,
        "pixel_fallback": spec.pixel_fallback,
        "pixel_expert": spec.pixel_expert,
    }
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
