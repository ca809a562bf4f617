"""The test helper's ports bind, and lie outside the ranges other processes take ports from."""

from __future__ import annotations

import random
import socket

from tests.ports import RAY_WORKER_PORTS_END, ephemeral_start, free_port


def test_a_free_port_binds_and_lies_outside_the_ephemeral_and_ray_ranges() -> None:
    rng = random.Random(0)
    for _ in range(20):
        port = free_port(rng)
        assert RAY_WORKER_PORTS_END < port < ephemeral_start()
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))


def test_a_taken_port_is_not_returned() -> None:
    taken = free_port(random.Random(1))
    with socket.socket() as s:
        s.bind(("127.0.0.1", taken))
        s.listen()
        assert free_port(random.Random(1)) != taken  # the same rng would pick it first
