"""Latency of a subnet on the caller's device at batch 1 (median of timed forwards).

>>> from atnas.space import SearchSpace                           # doctest: +SKIP
>>> from atnas.supernet import Supernet
>>> meter = LatencyMeter(Supernet(SearchSpace()), image_size=28, n_way=5)
>>> meter(SearchSpace().conv4())                                  # milliseconds
0.61
"""

from __future__ import annotations

import statistics
import time

import torch

from atnas.space import Encode
from atnas.supernet import Supernet, logits, zero_head


class LatencyMeter:
    """Measures (and caches) the batch-1 forward latency of encodes, in milliseconds."""

    def __init__(
        self,
        supernet: Supernet,
        image_size: int,
        n_way: int,
        repeats: int = 15,
        warmup: int = 3,
    ) -> None:
        self.supernet, self.n_way = supernet, n_way
        self.repeats, self.warmup = repeats, warmup
        self.device = next(supernet.parameters()).device
        c = supernet.space.in_channels
        self.x = torch.rand(1, c, image_size, image_size, device=self.device)
        self.cache: dict[Encode, float] = {}

    @torch.no_grad()
    def __call__(self, encode: Encode) -> float:
        """Median wall time of one forward of ``encode`` (body and head), in milliseconds."""
        if encode in self.cache:
            return self.cache[encode]
        w = {
            **{k: v.detach() for k, v in self.supernet.weights(encode).items()},
            **zero_head(encode, self.n_way, self.device),
        }
        times = []
        for i in range(self.warmup + self.repeats):
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            t0 = time.perf_counter()
            logits(self.x, encode, w)
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            if i >= self.warmup:
                times.append((time.perf_counter() - t0) * 1000)
        self.cache[encode] = statistics.median(times)
        return self.cache[encode]
