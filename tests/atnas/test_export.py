"""Export: the four model files, and TorchScript predictions equal to the eager subnet."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from atnas import pipeline
from atnas.cost import arch_cost
from atnas.export import MODEL_FILES, TaskModel, export_model, load_exported
from atnas.space import Encode
from atnas.supernet import logits
from atnas.tasks import to_float
from tests.atnas.conftest import TINY_SEARCH, TINY_SPACE, synthetic_task, tiny_state

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory):
    state = tiny_state()
    task = synthetic_task(way=3, shot=2, query=3)
    outcome = pipeline.search_task(state, task, TINY_SEARCH, device=CPU)
    out = tmp_path_factory.mktemp("export")
    paths = pipeline.export_outcome(out, state, outcome)
    return state, task, outcome, out, paths


def test_export_writes_every_model_file(exported) -> None:
    _, _, _, out, paths = exported
    assert set(paths) == set(MODEL_FILES)
    assert sorted(p.name for p in out.iterdir()) == sorted(MODEL_FILES)  # no temp files
    for name, p in paths.items():
        assert p == out / name and p.stat().st_size > 0


@pytest.mark.parametrize("batch", [1, 2, 5, 17])
def test_torchscript_equals_the_eager_subnet(exported, batch: int) -> None:
    _, task, outcome, _, paths = exported
    r = outcome.result
    x = to_float(task.support.images)
    x = torch.cat([x, to_float(task.query.images), torch.rand(20, *x.shape[1:])])[:batch]
    eager = logits(x, r.encode, r.weights)
    scripted = load_exported(paths["model.ts"])
    got = scripted(x)
    assert got.shape == (batch, 3)
    assert torch.allclose(got, eager, atol=1e-5, rtol=1e-4)
    assert torch.equal(got.argmax(1), eager.argmax(1))
    assert torch.allclose(torch.jit.load(str(paths["model.ts"]))(x), eager, atol=1e-5, rtol=1e-4)


def test_model_json_describes_inputs_classes_and_encode(exported) -> None:
    state, task, outcome, _, paths = exported
    meta = json.loads(paths["model.json"].read_text())
    assert meta["classes"] == task.support.names == outcome.classes
    assert meta["input"]["channels"] == 1
    assert meta["input"]["height"] == meta["input"]["width"] == state.config.image_size
    assert meta["input"]["range"] == [0.0, 1.0] and meta["input"]["layout"] == "NCHW"
    assert Encode.from_json(meta["encode"]) == outcome.result.encode
    assert meta["space"] == TINY_SPACE.to_json()


def test_arch_and_metrics_json(exported) -> None:
    state, _, outcome, _, paths = exported
    arch = json.loads(paths["arch.json"].read_text())
    cost = arch_cost(TINY_SPACE, outcome.result.encode, state.config.image_size, 3)
    assert arch["params"] == cost.params and arch["flops"] == cost.flops
    assert len(arch["layers"]) == TINY_SPACE.num_layers
    assert arch["params"] == sum(v.numel() for v in outcome.result.weights.values())
    metrics = json.loads(paths["metrics.json"].read_text())
    assert len(metrics["generations"]) == TINY_SEARCH.generations + 1
    assert metrics["support_acc"] == outcome.result.support_acc
    assert metrics["query_acc"] == outcome.query_acc
    assert metrics["classes"] == outcome.classes


def test_export_model_directly_with_three_channels(tmp_path: Path) -> None:
    from dataclasses import replace

    space = replace(TINY_SPACE, in_channels=3)
    enc = Encode.of(("sepconv5x5", 8), ("identity", 8), ("maxpool_conv1x1", 16))
    from atnas.supernet import Supernet

    gen = torch.Generator().manual_seed(0)
    w = {
        **Supernet(space).weights(enc),
        "head.w": torch.randn(4, 16, generator=gen),
        "head.b": torch.randn(4, generator=gen),
    }
    paths = export_model(tmp_path, space, enc, w, ["a", "b", "c", "d"], 12, {"note": 1})
    x = torch.rand(3, 3, 12, 12, generator=gen)
    eager = TaskModel(enc, w)(x)
    assert torch.allclose(load_exported(paths["model.ts"])(x), eager, atol=1e-5)
    assert json.loads(paths["metrics.json"].read_text()) == {"note": 1}
    assert json.loads(paths["model.json"].read_text())["input"]["channels"] == 3
