"""Starting or joining Ray, and sizing the evaluator pool."""

from __future__ import annotations

import logging
import os
from typing import Any

import ray
from ray._private import ray_constants

from service.schemas import ClusterInfo

# Ray's switch for its single-machine mode (node address = loopback).
_LOCAL_ONLY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
log = logging.getLogger(__name__)


def init_ray(address: str | None, num_cpus: int | None = None) -> None:
    """Joins the Ray cluster at ``address``, or starts a local one (never on Redis's port).

    A local cluster is closed to the network: every Ray process (GCS, raylet, workers, the
    dashboard agent with its job-submission API) listens on loopback only (:func:`local_only`).
    """
    if ray.is_initialized():
        return
    if address:
        ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
    else:
        local_only()
        ray.init(
            num_cpus=num_cpus or os.cpu_count() or 1,
            include_dashboard=False,
            ignore_reinit_error=True,
            log_to_driver=False,
        )
    log.info("ray ready: %s", resources())


def local_only() -> None:
    """Makes a Ray cluster started by this process bind every port to 127.0.0.1.

    Ray serves its gRPC and HTTP ports on the node's address, which it takes from the network
    even for a one-machine cluster, and has no authentication: anyone who can reach a port can
    run code. Ray's own single-machine mode (the one it uses on macOS and Windows) takes
    loopback as the node address; ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` selects it here. The
    variable is read when ``ray`` is imported, so the already-imported constant is set too;
    Ray's processes inherit the variable.
    """
    os.environ[_LOCAL_ONLY_ENV] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False


def cluster_info() -> ClusterInfo | None:
    """The size of the Ray cluster this process is connected to (None when it is not)."""
    if not ray.is_initialized():
        return None
    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]  # type: ignore[no-untyped-call]
    if not nodes:
        return None
    return ClusterInfo(
        cpus=int(sum(n.get("CPU", 0) for n in nodes)),
        gpus=int(sum(n.get("GPU", 0) for n in nodes)),
        node_cpus=int(max(n.get("CPU", 0) for n in nodes)),
        node_gpus=int(max(n.get("GPU", 0) for n in nodes)),
    )


def resources() -> dict[str, Any]:
    """The Ray cluster's total resources."""
    return dict(ray.cluster_resources())  # type: ignore[no-untyped-call]


#: How GPUs are shared: the evaluator actors take this share of one GPU all together (Ray may
#: pack fractional requests onto one GPU), and a meta-train worker the rest of a GPU, so that a
#: meta_train job still finds every GPU while a dispatcher keeps its evaluator pool (with whole
#: GPUs each, the pool would hold them all and Ray Train would wait forever); two meta-train
#: workers never share one GPU (NCCL cannot run two ranks on one).
EVALUATOR_GPU_SHARE = 0.1
TRAIN_GPU_SHARE = 1.0 - EVALUATOR_GPU_SHARE


def evaluator_gpus(size: int) -> float:
    """The GPU share each of ``size`` evaluator actors asks Ray for (see the shares above)."""
    return EVALUATOR_GPU_SHARE / size


def cluster_gpus() -> int:
    """GPUs in the Ray cluster."""
    return int(resources().get("GPU", 0))


def default_evaluators() -> int:
    """One evaluator per GPU when there are GPUs, else one per CPU core of the cluster."""
    gpus = cluster_gpus()
    if gpus:
        return gpus
    return max(1, int(resources().get("CPU", 1)))
