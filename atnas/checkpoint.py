"""Atomic save and checked load of checkpoints (plain dicts of tensors and JSON-able values)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from atnas.errors import CheckpointError

FORMAT = "atnas-checkpoint"
VERSION = 1


def save_checkpoint(path: str | Path, kind: str, payload: dict[str, Any]) -> None:
    """Writes ``payload`` to ``path`` atomically (temp file, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save({"format": FORMAT, "version": VERSION, "kind": kind, **payload}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path: str | Path, kind: str) -> dict[str, Any]:
    """Loads a checkpoint written by :func:`save_checkpoint` and checks its kind and version."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a corrupt or foreign file
        raise CheckpointError(f"{path}: not a readable atnas checkpoint ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an atnas checkpoint")
    if data.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint version {data.get('version')} is not {VERSION}")
    if data.get("kind") != kind:
        raise CheckpointError(f"{path}: holds a {data.get('kind')!r}, expected {kind!r}")
    return data
