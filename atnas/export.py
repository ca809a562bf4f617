"""Export of an adapted subnet: ``model.ts`` (TorchScript), ``model.json``, ``arch.json``,
``metrics.json``. Every file is written atomically, so a reader never sees half a file.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from atnas.cost import arch_cost
from atnas.space import Encode, SearchSpace
from atnas.supernet import logits

MODEL_FILES = ("model.ts", "model.json", "arch.json", "metrics.json", "front.json")


class TaskModel(nn.Module):
    """A standalone subnet with adapted weights: images in [0, 1] -> logits over the classes."""

    def __init__(self, encode: Encode, weights: dict[str, Tensor]) -> None:
        super().__init__()
        self.encode = encode
        self.names = list(weights)
        self.params = nn.ParameterList(
            [nn.Parameter(weights[k].detach().clone(), requires_grad=False) for k in self.names]
        )

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) in [0, 1] -> (B, N) logits."""
        w = dict(zip(self.names, self.params, strict=True))
        return logits(x, self.encode, w)


def atomic_write(path: Path, data: bytes) -> None:
    """Writes ``data`` to ``path`` through a temp file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: Any) -> None:
    """Atomic, pretty JSON."""
    atomic_write(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def torchscript_bytes(model: TaskModel, channels: int, image_size: int) -> bytes:
    """The model traced to TorchScript (valid for any batch size)."""
    example = torch.rand(2, channels, image_size, image_size)
    model = model.cpu().eval()
    with torch.no_grad(), warnings.catch_warnings():
        # group_norm's trace warns about a shape check that holds for any batch size here
        # (tests/atnas/test_export.py compares traced and eager outputs for 1..17 images).
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # type: ignore[attr-defined]
        traced = torch.jit.trace(model, example, check_trace=False)  # type: ignore[no-untyped-call]
    buf = io.BytesIO()
    torch.jit.save(traced, buf)
    return buf.getvalue()


def export_model(
    out_dir: str | Path,
    space: SearchSpace,
    encode: Encode,
    weights: dict[str, Tensor],
    classes: list[str],
    image_size: int,
    metrics: dict[str, Any],
    front: list[dict[str, Any]] | None = None,
) -> dict[str, Path]:
    """Writes the model files into ``out_dir`` (``front.json`` too when a front is given);
    returns their paths by name."""
    out = Path(out_dir)
    model = TaskModel(encode, {k: v.cpu() for k, v in weights.items()})
    cost = arch_cost(space, encode, image_size, len(classes))
    files = {
        "model.ts": torchscript_bytes(model, space.in_channels, image_size),
        "model.json": _json_bytes(
            {
                "format": "torchscript",
                "input": {
                    "layout": "NCHW",
                    "channels": space.in_channels,
                    "height": image_size,
                    "width": image_size,
                    "range": [0.0, 1.0],
                    "dtype": "float32",
                },
                "classes": classes,
                "encode": encode.to_json(),
                "space": space.to_json(),
            }
        ),
        "arch.json": _json_bytes({"encode": encode.to_json(), **cost.to_json()}),
        "metrics.json": _json_bytes(metrics),
    }
    if front is not None:
        files["front.json"] = _json_bytes({"front": front})
    paths = {}
    for name, data in files.items():
        atomic_write(out / name, data)
        paths[name] = out / name
    return paths


def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2) + "\n").encode()


def load_exported(path: str | Path) -> torch.jit.ScriptModule:
    """Loads a ``model.ts`` for inference."""
    model: torch.jit.ScriptModule = torch.jit.load(str(path), map_location="cpu")  # type: ignore[no-untyped-call]
    return model
