"""Starting or joining Ray, and sizing the evaluator pool."""

from __future__ import annotations

import logging
import os
from typing import Any

import ray

log = logging.getLogger(__name__)


def init_ray(address: str | None, num_cpus: int | None = None) -> None:
    """Joins the Ray cluster at ``address``, or starts a local one (never on Redis's port)."""
    if ray.is_initialized():
        return
    if address:
        ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
    else:
        ray.init(
            num_cpus=num_cpus or os.cpu_count() or 1,
            include_dashboard=False,
            ignore_reinit_error=True,
            log_to_driver=False,
        )
    log.info("ray ready: %s", resources())


def resources() -> dict[str, Any]:
    """The Ray cluster's total resources."""
    return dict(ray.cluster_resources())  # type: ignore[no-untyped-call]


def cluster_gpus() -> int:
    """GPUs in the Ray cluster."""
    return int(resources().get("GPU", 0))


def default_evaluators() -> int:
    """One evaluator per GPU when there are GPUs, else one per CPU core of the cluster."""
    gpus = cluster_gpus()
    if gpus:
        return gpus
    return max(1, int(resources().get("CPU", 1)))
