"""The model card README.md: its figures are the export's own, and its code runs as written."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from atnas import pipeline
from atnas.cost import arch_cost
from tests.atnas.conftest import TINY_SEARCH, synthetic_task, tiny_state

PROVENANCE = {
    "job": "0a1b2c3d4e5f60718293a4b5c6d7e8f9",
    "supernet": "ffeeddccbbaa99887766554433221100",
    "dataset": "0123456789abcdef0123456789abcdef",
    "dataset_filename": "my_task.zip",
    "spec": {"supernet": "ffee", "dataset": "0123", "population": 4, "generations": 2},
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory):
    state = tiny_state()
    task = synthetic_task(way=3, shot=2, query=3)
    outcome = pipeline.search_task(state, task, TINY_SEARCH, device=torch.device("cpu"))
    out = tmp_path_factory.mktemp("card")
    paths = pipeline.export_outcome(out, state, outcome, PROVENANCE)
    return state, outcome, paths


def test_the_card_lists_every_layer_with_the_cost_of_arch_json(exported) -> None:
    state, outcome, paths = exported
    card = paths["README.md"].read_text()
    cost = arch_cost(state.space, outcome.result.encode, state.config.image_size, 3)
    arch = json.loads(paths["arch.json"].read_text())
    assert arch["params"] == cost.params
    for layer in cost.layers:
        row = (
            f"| {layer.index} | {layer.op} | {layer.in_width} → {layer.width} "
            f"| {layer.input_hw[0]}×{layer.input_hw[1]} | {layer.params:,} | {layer.macs:,} |"
        )
        assert row in card
    assert f"| **total** | | | | **{cost.params:,}** | **{cost.flops:,}** |" in card
    assert f"- Parameters: {cost.params:,}" in card and f"- MACs per image: {cost.flops:,}" in card
    latency = outcome.metrics["cost"]["latency_ms"]
    assert f"{latency:.3f} ms on cpu" in card


def test_the_card_names_the_data_figures_and_the_job(exported) -> None:
    _, outcome, paths = exported
    card = paths["README.md"].read_text()
    listed = re.findall(r"^  (\d+)\. (.+)$", card, flags=re.M)
    assert [name for _, name in listed] == outcome.classes
    assert "- Dataset: `0123456789abcdef0123456789abcdef` (my_task.zip)" in card
    assert "- Support images (used to search and adapt): 6" in card
    assert "- Query images (used only to report accuracy): 9" in card
    assert f"- Support accuracy after adaptation: {100 * outcome.result.support_acc:.1f}%" in card
    assert f"- Query accuracy: {100 * outcome.query_acc:.1f}%" in card
    assert f"- Job: `{PROVENANCE['job']}`" in card
    assert f"- Supernet (meta_train job): `{PROVENANCE['supernet']}`" in card
    assert '"generations": 2' in card


def test_a_local_run_says_so(exported, tmp_path: Path) -> None:
    state, outcome, _ = exported
    paths = pipeline.export_outcome(tmp_path, state, outcome)
    assert "Made by a local run" in paths["README.md"].read_text()


@pytest.mark.parametrize("runtime", ["TorchScript", "ONNX Runtime"])
def test_the_three_loading_lines_run_as_written(exported, runtime: str) -> None:
    _, outcome, paths = exported
    card = paths["README.md"].read_text()
    after = card.split(f"{runtime}", 1)[1]
    code = re.search(r"```python\n(.*?)```", after, flags=re.S)
    assert code is not None
    lines = code.group(1).strip().splitlines()
    assert len(lines) == 3
    script = code.group(1) + "print(tuple(logits.shape))\n"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=paths["README.md"].parent,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"(1, {len(outcome.classes)})"
