"""Export of an adapted subnet: ``model.ts`` (TorchScript), ``model.onnx`` (ONNX), ``model.json``,
``arch.json``, ``metrics.json``, ``front.json`` and a model card ``README.md``. Every file is
written atomically, so a reader never sees half a file.

Both model files take the same input, float ``images`` of shape (B, C, H, W) in [0, 1] with any
batch size B, and give the same output, ``logits`` of shape (B, N) over the classes in
``model.json``'s order.
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
from atnas.modelcard import model_card
from atnas.space import Encode, SearchSpace
from atnas.supernet import logits

MODEL_FILES = (
    "model.ts",
    "model.onnx",
    "model.json",
    "arch.json",
    "metrics.json",
    "front.json",
    "README.md",
)
#: Names of the ONNX graph's input and output (also recorded in ``model.json``).
ONNX_INPUT, ONNX_OUTPUT = "images", "logits"
#: ONNX opset of ``model.onnx``: 17 runs on every ONNX Runtime since 1.13 (late 2022).
ONNX_OPSET = 17


def model_kind(pixels: nn.Module | None, pixel_expert: float | None) -> str:
    """What model files hold (model.json ``kind``, the job result's ``model``): ``subnet``,
    ``pixel_centroid`` (the pixels instead) or ``subnet_x_pixels`` (both multiplied)."""
    if pixels is None:
        return "subnet"
    return "pixel_centroid" if pixel_expert is None else "subnet_x_pixels"


class TaskModel(nn.Module):
    """A standalone subnet with adapted weights: images in [0, 1] -> logits over the classes.

    With ``pixels`` (a :class:`PixelCentroids`) and no ``pixel_expert`` it is the pixel
    nearest-centroid classifier instead, which a search job ships when it beat the subnet on
    held-out support images (:func:`atnas.floors.check_pixel_floor`); the subnet's weights are
    then not used. With both it is the two experts multiplied: the subnet's log-probabilities
    plus ``pixel_expert`` times the pixels' (:func:`atnas.floors.fused_log_probs`).
    """

    def __init__(
        self,
        encode: Encode,
        weights: dict[str, Tensor],
        pixels: PixelCentroids | None = None,
        pixel_expert: float | None = None,
    ) -> None:
        super().__init__()
        self.encode = encode
        self.names = list(weights)
        self.params = nn.ParameterList(
            [nn.Parameter(weights[k].detach().clone(), requires_grad=False) for k in self.names]
        )
        self.pixels = pixels
        self.pixel_expert = pixel_expert

    @property
    def kind(self) -> str:
        """See :func:`model_kind`."""
        return model_kind(self.pixels, self.pixel_expert)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) in [0, 1] -> (B, N) logits."""
        if self.pixels is not None and self.pixel_expert is None:
            out: Tensor = self.pixels(x)
            return out
        w = dict(zip(self.names, self.params, strict=True))
        net = logits(x, self.encode, w)
        if self.pixels is None or self.pixel_expert is None:
            return net
        pix: Tensor = self.pixels(x)
        return torch.log_softmax(net, 1) + self.pixel_expert * torch.log_softmax(pix, 1)


class PixelCentroids(nn.Module):
    """Nearest class mean on raw pixels as logits ``-scale * |x - mean_c|^2``."""

    def __init__(self, means: Tensor, scale: float) -> None:
        super().__init__()
        self.register_buffer("means", means.detach().clone().float())
        self.scale = float(scale)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, N). Squared differences element by element (not the expanded
        ``|x|^2 - 2 x.c + |c|^2``, whose cancellation costs float32 digits), so that
        TorchScript and ONNX Runtime agree to 1e-4 on the logits."""
        means = self.means
        assert isinstance(means, Tensor)
        diff = x.flatten(1).unsqueeze(1) - means.unsqueeze(0)  # (B, N, D)
        return -self.scale * (diff * diff).sum(2)


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


def onnx_bytes(model: TaskModel, channels: int, image_size: int) -> bytes:
    """The model as an ONNX graph (opset :data:`ONNX_OPSET`) with a dynamic batch dimension.

    Uses torch's TorchScript-based exporter (``dynamo=False``): it needs no package beyond torch
    and takes a fraction of a second, where the ``torch.export`` one needs ``onnxscript`` and
    takes seconds per model (``benchmarks/onnx_parity.py`` measures both).
    """
    example = torch.rand(2, channels, image_size, image_size)
    model = model.cpu().eval()
    buf = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        # The legacy exporter warns that it is legacy (DeprecationWarning) and repeats the
        # tracer's warning about group_norm's batch check (see torchscript_bytes).
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # type: ignore[attr-defined]
        torch.onnx.export(
            model,
            (example,),
            buf,  # type: ignore[arg-type]  # the legacy exporter writes to any binary file
            dynamo=False,
            input_names=[ONNX_INPUT],
            output_names=[ONNX_OUTPUT],
            dynamic_axes={ONNX_INPUT: {0: "batch"}, ONNX_OUTPUT: {0: "batch"}},
            opset_version=ONNX_OPSET,
        )
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
    provenance: dict[str, Any] | None = None,
    pixels: PixelCentroids | None = None,
    pixel_expert: float | None = None,
) -> dict[str, Path]:
    """Writes the model files into ``out_dir`` (``front.json`` too when a front is given);
    returns their paths by name.

    ``provenance`` (e.g. the job id, supernet and spec that made the model) goes into the
    model card ``README.md`` as given. With ``pixels`` the model files hold the pixel
    nearest-centroid classifier (``model.json`` ``kind``: ``pixel_centroid``), and arch.json
    the subnet it replaced; with ``pixel_expert`` too, the subnet and the pixels multiplied
    (``kind``: ``subnet_x_pixels``, see :class:`TaskModel`).
    """
    out = Path(out_dir)
    model = TaskModel(encode, {k: v.cpu() for k, v in weights.items()}, pixels, pixel_expert)
    cost = arch_cost(space, encode, image_size, len(classes))
    files = {
        "model.ts": torchscript_bytes(model, space.in_channels, image_size),
        "model.onnx": onnx_bytes(model, space.in_channels, image_size),
        "model.json": _json_bytes(
            {
                "format": "torchscript",
                "kind": model.kind,
                "pixel_expert": pixel_expert if model.kind == "subnet_x_pixels" else None,
                "formats": {
                    "model.ts": "torchscript",
                    "model.onnx": f"onnx (opset {ONNX_OPSET})",
                },
                "onnx": {"input": ONNX_INPUT, "output": ONNX_OUTPUT},
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
    files["README.md"] = model_card(
        space, encode, cost, classes, image_size, metrics, provenance or {}
    ).encode()
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
