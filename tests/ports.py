"""A free TCP port for a server a test starts in a subprocess.

A port from ``bind(("127.0.0.1", 0))`` lies in the kernel's ephemeral range, where every
outgoing connection and every Ray worker's gRPC listener also take ports; between picking it
and the subprocess binding it (seconds, while Ray starts) another process can take it, and
the server then fails with "address already in use" (a flaky CI run, stop 48). These ports
come from below the ephemeral range and above Ray's worker ports (10002-19999 by default),
where nothing on the machine takes a port unasked.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

RAY_WORKER_PORTS_END = 19_999
_FALLBACK_EPHEMERAL_START = 32_768


def ephemeral_start() -> int:
    """The first port of the kernel's ephemeral range (32768 where it cannot be read)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return _FALLBACK_EPHEMERAL_START


def free_port(rng: random.Random | None = None) -> int:
    """A port in (Ray's worker ports, the ephemeral range) that binds on 127.0.0.1 now."""
    rng = rng or random.Random()
    low, high = RAY_WORKER_PORTS_END + 1, ephemeral_start() - 1
    if high - low < 100:  # an unusual range: fall back to the kernel's choice
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])
    for _ in range(200):
        port = rng.randint(low, high)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {low}-{high} after 200 tries")
