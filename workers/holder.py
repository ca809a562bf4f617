"""The supernet holder: loads each meta-supernet once and shares it through the object store.

Evaluators receive an object reference to a plain dict of numpy arrays (zero-copy reads from
the object store) and build their supernet from it once per supernet id.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import ray
import torch

from atnas.metatrain import MetaState
from atnas.space import SearchSpace
from atnas.supernet import Supernet

Blob = dict[str, Any]


def to_blob(state: MetaState) -> Blob:
    """What the object store keeps of a meta-state: space, config, weights (numpy), population
    and the focused encode (None when the run had no focus phase)."""
    return {
        "space": state.space.to_json(),
        "weights": {k: v.detach().cpu().numpy() for k, v in state.supernet.state_dict().items()},
        "config": state.config.to_json(),
        "population": [(m.encode.to_json(), m.fitness) for m in state.ranked()],
        "focus": None if state.focus is None else state.focus.to_json(),
    }


def supernet_from_blob(blob: Blob, device: torch.device) -> Supernet:
    """A supernet built from a blob (weights copied once to ``device``)."""
    net = Supernet(SearchSpace.from_json(blob["space"]))
    net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in blob["weights"].items()})
    return net.to(device).eval()


@ray.remote(num_cpus=0)
class SupernetHolder:
    """Keeps one object-store copy of every meta-supernet asked for (by supernet id)."""

    def __init__(self) -> None:
        self._refs: dict[str, ray.ObjectRef[Any]] = {}

    def get(self, supernet_id: str, path: str) -> list[ray.ObjectRef[Any]]:
        """A one-element list holding the blob's reference (a list, so Ray does not resolve it)."""
        if supernet_id not in self._refs:
            state, _ = MetaState.load(Path(path))
            self._refs[supernet_id] = ray.put(to_blob(state))
        return [self._refs[supernet_id]]

    def loaded(self) -> list[str]:
        """Ids of the supernets held."""
        return list(self._refs)
