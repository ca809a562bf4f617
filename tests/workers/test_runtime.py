"""The local Ray cluster is closed to the network: every port it listens on is loopback."""

from __future__ import annotations

import ipaddress

import psutil
import pytest

from workers.runtime import TRAIN_GPU_SHARE, evaluator_gpus


def _is_loopback(ip: str) -> bool:
    addr = ipaddress.ip_address(ip.split("%")[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_loopback


def test_no_ray_port_listens_beyond_loopback(ray_address: str) -> None:
    import ray

    @ray.remote
    def ping() -> int:
        return 1

    assert ray.get(ping.remote()) == 1  # a worker process is up, with its own gRPC port
    assert ray_address.startswith("127.0.0.1:")
    me = psutil.Process()
    ray_pids = {p.pid for p in me.children(recursive=True)} | {me.pid}
    listening = [
        (c.laddr.ip, c.laddr.port, psutil.Process(c.pid).name())
        for c in psutil.net_connections("inet")
        if c.status == psutil.CONN_LISTEN and c.pid in ray_pids
    ]
    names = {name for _, _, name in listening}
    assert {"gcs_server", "raylet"} <= names, listening  # the check sees Ray's processes
    exposed = [entry for entry in listening if not _is_loopback(entry[0])]
    assert exposed == []


def test_cluster_info_describes_the_session_cluster(ray_address: str) -> None:
    from workers.runtime import cluster_info

    info = cluster_info()
    assert info is not None
    assert (info.cpus, info.gpus, info.node_cpus) == (2, 0, 2)
    assert info.max_workers == info.auto_workers == 2


@pytest.mark.parametrize("size", [1, 2, 3, 8, 64])
def test_a_meta_train_worker_always_fits_beside_the_whole_evaluator_pool(size: int) -> None:
    # Ray may pack every evaluator's fractional GPU onto one GPU: even then a meta-train worker
    # must fit on it (else a meta_train job waits forever while a dispatcher keeps its pool),
    # and two meta-train workers must never fit on one GPU (NCCL cannot run two ranks on one).
    pool = size * evaluator_gpus(size)
    assert evaluator_gpus(size) > 0 and pool + TRAIN_GPU_SHARE <= 1.0 + 1e-12
    assert 2 * TRAIN_GPU_SHARE > 1.0
