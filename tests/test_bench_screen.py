"""benchmarks/sweep/screen.py: ``train --snap`` (one run saved at an earlier time as well, G) and
``diff`` (paired differences, replicate runs averaged)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from atnas.metastate import MetaState
from tests.conftest import Zips

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "sweep" / "screen.py"
META_VAL = ["Armenian", "Bengali", "Hebrew", "Korean", "Tifinagh"]


def _train(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    classes = {f"{a}/character{c:02d}": 8 for a in ["Latin", "Greek", *META_VAL] for c in range(5)}
    data = Zips.write(tmp_path / "o.zip", Zips.classes(classes, wrapper="images_background/"))
    cmd = [sys.executable, str(SCRIPT), "--data", str(data), "--dir", str(tmp_path / "out")]
    return subprocess.run(
        [*cmd, "train", *args], capture_output=True, text=True, timeout=300, cwd=ROOT
    )


def test_a_snapshot_is_the_same_run_earlier(tmp_path: Path) -> None:
    done = _train(tmp_path, "c_s0", "6", '{"conv4": 16}', "--snap", "2:c2_s0")
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    snap, final = lines[0], lines[-1]
    assert snap["snapshot"] == "c2_s0" and snap["at"] == 2.0
    early, _ = MetaState.load(tmp_path / "out" / "c2_s0.pt")
    late, _ = MetaState.load(tmp_path / "out" / "c_s0.pt")
    assert 0 < early.iteration == snap["iterations"] < late.iteration == final["iterations"]
    assert 2.0 <= early.elapsed < late.elapsed
    # the snapshot's curve is the start of the final one: one run, not two
    assert late.curve[: len(early.curve)] == early.curve


def test_a_snapshot_of_a_search_is_refused_in_one_line(tmp_path: Path) -> None:
    done = _train(tmp_path, "s", "3", "{}", "--snap", "1:s1")
    assert done.returncode == 1
    assert done.stderr.strip() == "--snap is for fixed nets at a constant meta-rate"
    assert not (tmp_path / "out").exists()
    bad = _train(tmp_path, "c", "3", '{"conv4": 16}', "--snap", "soon")
    assert bad.returncode == 1 and "--snap takes SECONDS:NAME" in bad.stderr


def test_eval_also_adapts_a_chain_of_an_arms_supernet(tmp_path: Path) -> None:
    done = _train(tmp_path, "c_s0", "3", '{"conv4": 16}')
    assert done.returncode == 0, done.stderr[-2000:]
    data, out = tmp_path / "o.zip", tmp_path / "e.json"
    cmd = [sys.executable, str(SCRIPT), "--data", str(data), "--dir", str(tmp_path / "out")]
    cmd += ["eval", "c", "3", "--seeds", "0", "--no-c4", "--out", str(out), "--ways", "5"]
    cmd += ["--also", "c=16,16,16,16", "--also", "x=8,8,8,8", "--also", "16,16,8,8"]
    ran = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert ran.returncode == 0, ran.stderr[-2000:]
    acc = json.loads(out.read_text())["settings"]["5w1s"]["acc"]
    # the arm's own net as a chain is the arm's net: the same accuracies; another arm's
    # chain is not run on this one; a chain for every arm is
    assert set(acc) == {"c", "c/16,16,16,16", "c/16,16,8,8"}
    assert acc["c/16,16,16,16"] == acc["c"] and len(acc["c/16,16,8,8"]) == 3
    cmd[-6:] = ["--also", "c=16,x"]
    bad = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert bad.returncode == 1 and bad.stderr.strip() == (
        "--also takes [ARM=]W1,W2,.. (whole numbers), got '16,x'"
    )


def test_a_fixed_chain_can_name_its_ops(tmp_path: Path) -> None:
    chain = '{"fixed": [8, "sepconv3x3:16", "sepconv3x3:16", 16]}'
    done = _train(tmp_path, "sep", "2", chain)
    assert done.returncode == 0, done.stderr[-2000:]
    state, _ = MetaState.load(tmp_path / "out" / "sep.pt")
    assert state.best_encode().key() == ("conv3x3:8|sepconv3x3:16|sepconv3x3:16|conv3x3:16")
    assert set(state.space.ops) == {"conv3x3", "sepconv3x3"}
    for bad_item in ['"nosuchop:16"', '"sepconv3x3:0"', '"16.5"']:
        bad = _train(tmp_path, "bad", "2", f'{{"fixed": [8, {bad_item}]}}')
        assert bad.returncode == 1 and bad.stderr.count("\n") == 1, bad.stderr
        assert "is not a width or" in bad.stderr


def test_a_fixed_chain_may_be_deeper_or_shallower_than_the_preset(tmp_path: Path) -> None:
    for name, chain, layers in [
        ("deep", '[8, "sepconv3x3:16", 16, 16, "sepconv3x3:32"]', 5),
        ("flat", "[8, 16]", 2),
    ]:
        done = _train(tmp_path, name, "2", f'{{"fixed": {chain}}}')
        assert done.returncode == 0, done.stderr[-2000:]
        state, _ = MetaState.load(tmp_path / "out" / f"{name}.pt")
        assert len(state.best_encode().layers) == state.space.num_layers == layers


def test_diff_averages_replicate_runs_joined_with_plus(tmp_path: Path) -> None:
    acc = {"a1": [1.0, 0.5, 0.8, 0.6], "a2": [0.8, 0.5, 0.6, 0.6], "b": [0.5, 0.5, 0.5, 0.5]}
    report = {"settings": {"5w1s": {"task_seed": [3, 3, 4, 4], "acc": acc}}}
    path = tmp_path / "r.json"
    path.write_text(json.dumps(report))
    cmd = [sys.executable, str(SCRIPT), "diff", str(path)]
    pooled = subprocess.run([*cmd, "a1+a2", "b"], capture_output=True, text=True, cwd=ROOT)
    assert pooled.returncode == 0, pooled.stderr[-2000:]
    # per task: 0.4, 0.0, 0.2, 0.1 -> mean +17.50; seed 3 +20.00, seed 4 +15.00
    assert "a1+a2 67.50 - b 50.00 = +17.50" in pooled.stdout
    assert "(per seed +20.00, +15.00)" in pooled.stdout
    # run level: b's one run reused for each replicate; (a1-b) +25, +20, (a2-b) +15, +10 per
    # seed -> mean +17.50, t(3) 3.182 x sd 6.455 / 2 = 10.27
    assert "runs (4 = 2 x 2 seeds): +17.50 ± 10.27 (t)" in pooled.stdout
    one = subprocess.run([*cmd, "a1", "b"], capture_output=True, text=True, cwd=ROOT)
    assert "= +22.50" in one.stdout
    assert "runs (2 = 1 x 2 seeds): +22.50" in one.stdout
    paired = subprocess.run([*cmd, "a1+a2", "b+a2"], capture_output=True, text=True, cwd=ROOT)
    # replicates paired by position: (a1-b) +25, +20 and (a2-a2) 0, 0
    assert "runs (4 = 2 x 2 seeds): +11.25" in paired.stdout, paired.stdout
    bad = subprocess.run([*cmd, "a1+zz", "b"], capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode != 0 and "no column ['zz']" in bad.stderr


def test_diff_refuses_arms_of_different_lengths(tmp_path: Path) -> None:
    acc = {"a": [1.0, 0.5, 0.8], "b": [0.5, 0.5], "c": [0.5, 0.5, 0.5]}
    report = {"settings": {"5w1s": {"task_seed": [3, 3, 4], "acc": acc}}}
    path = tmp_path / "r.json"
    path.write_text(json.dumps(report))
    cmd = [sys.executable, str(SCRIPT), "diff", str(path), "a+b", "c"]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert "different task counts" in done.stderr


def test_diff_refuses_what_is_not_a_report_in_one_line(tmp_path: Path) -> None:
    empty = '{"settings": {"5w1s": {"task_seed": [], "acc": {}}}}'
    bad = {"list.json": "[1, 2]", "empty.json": empty}
    for name, text in bad.items():
        path = tmp_path / name
        path.write_text(text)
        cmd = [sys.executable, str(SCRIPT), "diff", str(path), "a", "b"]
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
        assert "not an eval --out report" in done.stderr or "no tasks" in done.stderr


def test_pool_renames_one_methods_runs_into_one_column(tmp_path: Path) -> None:
    r1 = {
        "encodes": {},
        "settings": {"5w1s": {"task_seed": [3, 3], "acc": {"x1": [1.0, 0.5], "y1": [0.5, 0.5]}}},
    }
    r2 = {
        "encodes": {},
        "settings": {"5w1s": {"task_seed": [6, 6], "acc": {"x2": [0.5, 0.5], "y2": [0.0, 0.5]}}},
    }
    paths = []
    for i, r in enumerate([r1, r2]):
        paths.append(tmp_path / f"r{i}.json")
        paths[-1].write_text(json.dumps(r))
    out = tmp_path / "pooled.json"
    renames = ["--rename", "x1=x", "--rename", "x2=x", "--rename", "y1=y", "--rename", "y2=y"]
    cmd = [sys.executable, str(SCRIPT), "pool", "y,x", *map(str, paths), *renames]
    done = subprocess.run([*cmd, "--out", str(out)], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    block = json.loads(out.read_text())["settings"]["5w1s"]
    assert block["task_seed"] == [3, 3, 6, 6]
    assert block["acc"] == {"y": [0.5, 0.5, 0.0, 0.5], "x": [1.0, 0.5, 0.5, 0.5]}
    bad = subprocess.run([*cmd, "--rename", "x3"], capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode != 0 and "--rename wants OLD=NEW" in bad.stderr


def test_pool_refuses_what_is_not_a_report_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "list.json"
    path.write_text("[1, 2]")
    cmd = [sys.executable, str(SCRIPT), "pool", "a,b", str(path)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert "not an eval --out report" in done.stderr
