"""ONNX export figures (issue 9, item 4). A script, not a test.

1. Parity: a tiny-preset supernet meta-trained briefly on Omniglot, searched and adapted on a
   5-way 5-shot Tifinagh task, exported; ONNX Runtime vs TorchScript on the task's 100 images
   (25 support + 75 query): argmax agreement and max |logit difference| (target: identical
   argmax, <= 1e-4). Also on 20 random nets of the full 7-op space (untrained weights).
2. Export cost: seconds to write model.onnx (torch's legacy exporter, as the jobs do), against
   model.ts and the whole search job; and the ``torch.export``-based exporter when
   ``onnxscript`` is installed (it is not a dependency; ``pip install onnxscript`` to compare).
3. Latency: TorchScript vs ONNX Runtime at batch 1 and 64 (median of repeated calls, same
   number of threads).

    python benchmarks/onnx_parity.py      # ~1 minute on 2 cores; needs Omniglot
                                           # (atnas datasets fetch omniglot, or ATNAS_DATASETS)
Writes benchmarks/out/onnx_parity.json and prints a Markdown summary.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch

from atnas import pipeline
from atnas.data import load_task
from atnas.evolution import random_encode
from atnas.export import TaskModel, onnx_bytes, torchscript_bytes
from atnas.presets import get_preset
from atnas.supernet import Supernet
from atnas.tasks import to_float
from atnas_cli.demo import groups_zip, task_zip

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ["Latin", "Greek", "Futurama", "Gujarati"]


def omniglot() -> Path:
    base = Path(os.environ.get("ATNAS_DATASETS", ROOT.parent / "shared" / "datasets"))
    path = base / "omniglot" / "images_background.zip"
    if not path.is_file():
        cache = Path(os.environ.get("ATNAS_CACHE", Path.home() / ".cache" / "atnas"))
        path = cache / "omniglot" / "images_background.zip"
    if not path.is_file():
        sys.exit(f"Omniglot not found (looked in {base}); run: atnas datasets fetch omniglot")
    return path


def median_s(fn: Callable[[], Any], repeat: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def session(model: bytes) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = torch.get_num_threads()
    return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])


def parity(ts: bytes, onnx: bytes, x: torch.Tensor) -> dict[str, float]:
    scripted = torch.jit.load(io.BytesIO(ts))  # type: ignore[no-untyped-call]
    with torch.no_grad():
        a = scripted(x).numpy()
    b = session(onnx).run(["logits"], {"images": x.numpy()})[0]
    return {
        "images": len(x),
        "argmax_agreement": float((a.argmax(1) == b.argmax(1)).mean()),
        "max_abs_logit_diff": float(np.abs(a - b).max()),
    }


def dynamo_seconds(model: TaskModel, channels: int, size: int) -> float | None:
    try:
        import onnxscript  # noqa: F401
    except ImportError:
        return None
    example = torch.rand(2, channels, size, size)
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            model.eval(),
            (example,),
            dynamo=True,
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            verbose=False,
        )
        assert program is not None
        program.model_proto.SerializeToString()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--meta-seconds", type=float, default=20.0)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "onnx_parity.json")
    args = ap.parse_args()
    torch.manual_seed(0)
    cpu = torch.device("cpu")
    src = omniglot()
    with tempfile.TemporaryDirectory() as d:
        train = Path(d) / "train.zip"
        train.write_bytes(groups_zip(src, TRAIN))
        images = pipeline.load_meta_images([train])
        state = pipeline.meta_train(
            images, "tiny", way=5, shot=5, query=5, budget_seconds=args.meta_seconds, device=cpu
        )
        task_path = Path(d) / "task.zip"
        task_path.write_bytes(task_zip(src, "Tifinagh", 5, 5, 15, seed=1))
        task = load_task(task_path, pipeline.task_image_config(state))
    t = time.perf_counter()
    outcome = pipeline.search_task(state, task, device=cpu)
    search_s = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        pipeline.export_outcome(d, state, outcome)
        export_all_s = time.perf_counter() - t
        ts = (Path(d) / "model.ts").read_bytes()
        onnx = (Path(d) / "model.onnx").read_bytes()
    assert task.query is not None
    x = torch.cat([to_float(task.support.images), to_float(task.query.images)])
    searched = parity(ts, onnx, x)

    r = outcome.result
    model = TaskModel(r.encode, {k: v.cpu() for k, v in r.weights.items()})
    c, size = state.space.in_channels, state.config.image_size
    onnx_s = median_s(lambda: onnx_bytes(model, c, size), repeat=5, warmup=1)
    ts_s = median_s(lambda: torchscript_bytes(model, c, size), repeat=5, warmup=1)
    dyn_s = dynamo_seconds(model, c, size)

    # Every op: 20 random nets of the full space (wide preset), untrained weights.
    wide = get_preset("wide").space
    net = Supernet(wide, seed=0)
    rng = np.random.default_rng(0)
    gen = torch.Generator().manual_seed(0)
    worst_diff, worst_agree, ops = 0.0, 1.0, set()
    for _ in range(20):
        enc = random_encode(wide, rng)
        ops.update(layer.op for layer in enc.layers)
        w = dict(net.weights(enc))
        w["head.w"] = torch.randn(5, enc.layers[-1].width, generator=gen) * 0.1
        w["head.b"] = torch.zeros(5)
        m = TaskModel(enc, w)
        p = parity(torchscript_bytes(m, 1, 28), onnx_bytes(m, 1, 28), x)
        worst_diff = max(worst_diff, p["max_abs_logit_diff"])
        worst_agree = min(worst_agree, p["argmax_agreement"])

    ort_session = session(onnx)
    scripted = torch.jit.load(io.BytesIO(ts))  # type: ignore[no-untyped-call]
    latency = {}
    for batch in (1, 64):
        xb = torch.rand(batch, c, size, size)
        xn = xb.numpy()

        def run_ts(xb: torch.Tensor = xb) -> None:
            with torch.no_grad():
                scripted(xb)

        def run_ort(xn: np.ndarray = xn) -> None:
            ort_session.run(["logits"], {"images": xn})

        repeat = 200 if batch == 1 else 30
        latency[batch] = {
            "torchscript_ms": 1000 * median_s(run_ts, repeat, warmup=5),
            "onnxruntime_ms": 1000 * median_s(run_ort, repeat, warmup=5),
        }

    report = {
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "onnxruntime": ort.__version__,
            "cpus": os.cpu_count(),
            "threads": torch.get_num_threads(),
        },
        "model": {
            "encode": r.encode.key(),
            "meta_train_seconds": args.meta_seconds,
            "query_acc": outcome.query_acc,
        },
        "parity_searched": searched,
        "parity_random_nets": {
            "nets": 20,
            "ops": sorted(ops),
            "min_argmax_agreement": worst_agree,
            "max_abs_logit_diff": worst_diff,
        },
        "seconds": {
            "search_and_adapt": search_s,
            "export_all_files": export_all_s,
            "onnx_legacy": onnx_s,
            "torchscript": ts_s,
            "onnx_dynamo": dyn_s,
        },
        "latency_ms": latency,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    s, rn = report["seconds"], report["parity_random_nets"]
    dyn = "n/a (pip install onnxscript)" if dyn_s is None else f"{dyn_s:.2f} s"
    print(f"model {r.encode.key()} (query acc {outcome.query_acc:.3f}), {c}x{size}x{size} input")
    print("| check | images | argmax agreement | max abs logit diff |")
    print("| --- | ---: | ---: | ---: |")
    print(
        f"| searched net | {searched['images']} | {searched['argmax_agreement']:.3f} "
        f"| {searched['max_abs_logit_diff']:.2e} |"
    )
    print(
        f"| 20 random nets ({len(ops)} ops) | {len(x)} each | {rn['min_argmax_agreement']:.3f} "
        f"(worst) | {rn['max_abs_logit_diff']:.2e} (worst) |"
    )
    print()
    print(
        f"export: model.onnx {s['onnx_legacy']:.3f} s (legacy exporter), model.ts "
        f"{s['torchscript']:.3f} s, all files {s['export_all_files']:.3f} s; search + adapt "
        f"{s['search_and_adapt']:.1f} s; torch.export-based ONNX exporter: {dyn}"
    )
    print("| batch | TorchScript ms | ONNX Runtime ms |")
    print("| ---: | ---: | ---: |")
    for batch, v in latency.items():
        print(f"| {batch} | {v['torchscript_ms']:.3f} | {v['onnxruntime_ms']:.3f} |")
    print(f"(threads: {torch.get_num_threads()} for both; written to {args.out})")


if __name__ == "__main__":
    main()
