"""model.onnx: ONNX Runtime gives TorchScript's predictions (issue 9: identical argmax on 100
images, logits within 1e-4), for a searched net of the tiny preset and for every op."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from atnas import pipeline
from atnas.export import ONNX_INPUT, ONNX_OUTPUT, TaskModel, export_model, load_exported
from atnas.presets import get_preset
from atnas.space import Encode
from atnas.supernet import Supernet
from atnas.tasks import to_float
from tests.atnas.conftest import TINY_SEARCH, synthetic_task, tiny_state

CPU = torch.device("cpu")
TINY = get_preset("tiny")
SIZE = 28  # the tiny preset's image size


def _images(n: int, seed: int, task_images: torch.Tensor | None = None) -> torch.Tensor:
    """``n`` images in [0, 1]: the task's own first, then noise and binary strokes."""
    gen = torch.Generator().manual_seed(seed)
    parts = [] if task_images is None else [task_images]
    parts.append(torch.rand(n, 1, SIZE, SIZE, generator=gen))
    parts.append((torch.rand(n, 1, SIZE, SIZE, generator=gen) > 0.8).float())
    return torch.cat(parts)[:n]


def _session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _compare(ts_path: Path, onnx_path: Path, x: torch.Tensor) -> tuple[float, float]:
    """(max |logit difference|, share of equal argmax) of the two files on ``x``."""
    with torch.no_grad():
        ts = load_exported(ts_path)(x).numpy()
    ox = _session(onnx_path).run([ONNX_OUTPUT], {ONNX_INPUT: x.numpy()})[0]
    assert ox.shape == ts.shape
    return float(np.abs(ts - ox).max()), float((ts.argmax(1) == ox.argmax(1)).mean())


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.Tensor]:
    """A tiny-preset supernet (4 layers, widths 16/32, 28 px) searched and adapted on a
    5-way task, exported; with the task's support and query images."""
    from atnas.evolution import random_encode
    from atnas.metatrain import Member, MetaState

    rng = np.random.default_rng(0)
    members: list[Member] = []
    while len(members) < 4:
        e = random_encode(TINY.space, rng)
        if all(m.encode != e for m in members):
            members.append(Member(e, 1.0 - 0.1 * len(members)))
    cfg = replace(TINY.meta, image_size=SIZE, preset="tiny", iterations=1)
    state = MetaState(TINY.space, cfg, Supernet(TINY.space, seed=0), members)
    task = synthetic_task(way=5, shot=3, query=6, size=SIZE)
    outcome = pipeline.search_task(state, task, TINY_SEARCH, device=CPU)
    out = tmp_path_factory.mktemp("onnx")
    pipeline.export_outcome(out, state, outcome)
    task_x = torch.cat([to_float(task.support.images), to_float(task.query.images)])
    return out, task_x


def test_onnx_runtime_matches_torchscript_on_100_images(searched) -> None:
    out, task_x = searched
    x = _images(100, seed=1, task_images=task_x)
    assert x.shape == (100, 1, SIZE, SIZE)
    diff, agree = _compare(out / "model.ts", out / "model.onnx", x)
    assert agree == 1.0
    assert diff <= 1e-4


@pytest.mark.parametrize("batch", [1, 3, 64])
def test_the_onnx_batch_dimension_is_dynamic(searched, batch: int) -> None:
    out, _ = searched
    session = _session(out / "model.onnx")
    (inp,), (outp,) = session.get_inputs(), session.get_outputs()
    assert (inp.name, outp.name) == (ONNX_INPUT, ONNX_OUTPUT)
    assert inp.shape[1:] == [1, SIZE, SIZE] and isinstance(inp.shape[0], str)
    x = _images(batch, seed=batch)
    diff, agree = _compare(out / "model.ts", out / "model.onnx", x)
    assert agree == 1.0 and diff <= 1e-4


@pytest.mark.parametrize("op", TINY.space.ops)
def test_every_op_exports_to_the_same_logits(op: str, tmp_path: Path) -> None:
    # Each op at both widths, on 3 channels and an odd size (pooling and padding edge cases).
    space = replace(TINY.space, in_channels=3)
    widths = TINY.space.widths
    lo, hi = widths[0], widths[-1]
    candidates = [
        Encode.of((op, lo), (op, hi), (op, hi), (op, lo)),
        Encode.of(("conv3x3", lo), (op, lo), ("conv3x3", hi), (op, hi)),  # identity keeps widths
    ]
    enc = next(e for e in candidates if space.is_valid(e))
    gen = torch.Generator().manual_seed(0)
    w = {
        **Supernet(space, seed=1).weights(enc),
        "head.w": torch.randn(4, enc.layers[-1].width, generator=gen),
        "head.b": torch.randn(4, generator=gen),
    }
    paths = export_model(tmp_path, space, enc, w, list("abcd"), 13, {})
    x = torch.rand(20, 3, 13, 13, generator=gen)
    diff, agree = _compare(paths["model.ts"], paths["model.onnx"], x)
    assert agree == 1.0 and diff <= 1e-4
    eager = TaskModel(enc, w)(x).detach().numpy()
    ox = _session(paths["model.onnx"]).run(None, {ONNX_INPUT: x.numpy()})[0]
    assert np.abs(eager - ox).max() <= 1e-4


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_net_adapted_on_cuda_exports_for_the_cpu(tmp_path: Path) -> None:
    # A worker with a GPU searches and adapts on CUDA; both model files must still load and
    # run on a CPU-only machine and agree with the CUDA net.
    cuda = torch.device("cuda")
    state = tiny_state()
    outcome = pipeline.search_task(state, synthetic_task(way=3), TINY_SEARCH, device=cuda)
    paths = pipeline.export_outcome(tmp_path, state, outcome)
    x = torch.rand(16, 1, 8, 8)
    with torch.no_grad():
        on_gpu = TaskModel(outcome.result.encode, outcome.result.weights).to(cuda)(x.to(cuda))
    ox = _session(paths["model.onnx"]).run([ONNX_OUTPUT], {ONNX_INPUT: x.numpy()})[0]
    assert np.abs(on_gpu.cpu().numpy() - ox).max() <= 1e-3  # CUDA convolutions differ a little
    diff, agree = _compare(paths["model.ts"], paths["model.onnx"], x)
    assert agree == 1.0 and diff <= 1e-4
