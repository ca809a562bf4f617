"""``atnas search`` with cost bounds, run in-process on a tiny untrained supernet."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from atnas.cost import arch_cost
from atnas.limits import cheapest
from atnas_cli.main import main
from tests.atnas.conftest import class_files, tiny_state, write_zip


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    """A saved tiny supernet (8-pixel images) and a 3-way task zip."""
    state = tiny_state()
    state.save(tmp_path / "supernet.pt")
    members = class_files({"a": 3, "b": 3, "c": 3}, prefix="support/", size=8)
    return tmp_path / "supernet.pt", write_zip(tmp_path / "task.zip", members)


def _search(files: tuple[Path, Path], out: Path, *bounds: str) -> list[str]:
    supernet, task = files
    return [
        "search",
        str(task),
        "--supernet",
        str(supernet),
        "--out",
        str(out),
        "--population",
        "2",
        "--generations",
        "1",
        *bounds,
    ]


def test_search_within_a_mac_bound(
    files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tiny_state()
    limit = 2 * cheapest(state.space, state.config.image_size, 3).macs
    out = tmp_path / "model"
    assert main([*_search(files, out, "--max-macs", str(limit)), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["cost"]["macs"] <= limit and metrics["limits"]["max_macs"] == limit
    front = json.loads((out / "front.json").read_text())
    points = front["front"] if isinstance(front, dict) else front
    assert points and all(p["macs"] <= limit for p in points)
    assert main(_search(files, tmp_path / "again", "--max-macs", str(limit))) == 0
    assert " MACs, " in capsys.readouterr().out  # the human summary names the cost


def test_the_pixel_fallback_can_be_turned_off(
    files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*_search(files, tmp_path / "on"), "--json"]) == 0
    on = json.loads(capsys.readouterr().out)
    assert on["floors"]["check"] is not None  # 3 shots: the check ran
    assert main([*_search(files, tmp_path / "off", "--no-pixel-fallback"), "--json"]) == 0
    off = json.loads(capsys.readouterr().out)
    assert off["floors"]["check"] is None and off["model"] == "subnet"
    assert off["pixel_expert"] is None
    args = ["--no-pixel-fallback", "--pixel-expert", "2"]
    assert main([*_search(files, tmp_path / "both", *args), "--json"]) == 0
    both = json.loads(capsys.readouterr().out)
    assert both["model"] == "subnet_x_pixels" and both["pixel_expert"] == 2.0
    info = json.loads((tmp_path / "both" / "model.json").read_text())
    assert info["kind"] == "subnet_x_pixels" and info["pixel_expert"] == 2.0


@pytest.mark.parametrize(
    ("option", "start"),
    [
        (["--max-macs", "1"], "atnas: error: max_macs 1 cannot be met: the smallest net"),
        (["--pixel-expert", "-1"], "atnas: error: pixel_expert must be a finite number >= 0"),
    ],
)
def test_a_bad_search_setting_is_one_line_and_writes_nothing(
    files: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    option: list[str],
    start: str,
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(_search(files, tmp_path / "model", *option))
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(start)
    assert err.count("\n") == 1
    assert not (tmp_path / "model" / "model.ts").exists()


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--focus", "1.5"], "atnas: error: focus must be in [0, 1)"),
        (["--final-widen", "-1"], "atnas: error: final_widen must be in [0, 1]"),
        (["--task-styles", "2"], "atnas: error: task_styles must be in [0, 1]"),
        (["--fixed-encode", '[{"op": "conv3x3", "width": 7}]'], "atnas: error: invalid encode"),
        (["--focus", "0.5"], "atnas: error: preset 'default' meta-trains one fixed net"),
    ],
)
def test_a_bad_meta_training_setting_is_one_line_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: list[str], message: str
) -> None:
    data = write_zip(tmp_path / "data.zip", class_files({"a": 2, "b": 2}, size=8))
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_:
        main(["meta-train", str(data), "--out", str(out), "--iterations", "1", *option])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1
    assert not out.exists()  # checked before the data is read or a folder is made


def test_a_bound_that_rules_out_the_one_trained_net_is_warned_of(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tiny_state()  # as if it had meta-trained its dearest member alone
    size = state.config.image_size
    net = max(
        (m.encode for m in state.population), key=lambda e: arch_cost(state.space, e, size, 3).flops
    )
    state.config = dataclasses.replace(state.config, fixed_encode=net)
    state.save(tmp_path / "supernet.pt")
    members = class_files({"a": 3, "b": 3, "c": 3}, prefix="support/", size=8)
    files = tmp_path / "supernet.pt", write_zip(tmp_path / "task.zip", members)
    limit = arch_cost(state.space, net, size, 3).flops - 1
    assert cheapest(state.space, size, 3).macs <= limit
    assert main(_search(files, tmp_path / "model", "--max-macs", str(limit))) == 0
    out = capsys.readouterr().out
    said = f"warning: this supernet meta-trained one net ({net.key()}"
    assert said in out and f"the limits (max_macs {limit}) ruled it out" in out
    assert (
        "**Warning:** this supernet meta-trained" in (tmp_path / "model" / "README.md").read_text()
    )
    metrics = json.loads((tmp_path / "model" / "metrics.json").read_text())
    assert len(metrics["warnings"]) == 1
