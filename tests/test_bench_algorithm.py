"""benchmarks/algorithm.py, the paired benchmark, run end to end on a tiny dataset.

It is the script an outside measurement reruns, so it must run the product's default preset
(one fixed net, adapted by a search job without a search) as well as a searching preset.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from atnas.presets import FOUND_SEP, FOUND_SMALL
from tests.conftest import Zips

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "algorithm.py"
META_VAL = ["Armenian", "Bengali", "Hebrew", "Korean", "Tifinagh"]


def _omniglot_like(path: Path) -> Path:
    """Two training alphabets and the 5 validation alphabets, 4 characters of 16 images each."""
    classes = {f"{a}/character{c:02d}": 16 for a in ["Latin", "Greek", *META_VAL] for c in range(4)}
    return Zips.write(path, Zips.classes(classes, wrapper="images_background/"))


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    data = _omniglot_like(tmp_path / "omniglot.zip")
    cmd = [sys.executable, str(SCRIPT), "--data", str(data), "--workdir", str(tmp_path / "w")]
    cmd += ["--out", str(tmp_path / "out.json"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)


def test_the_default_preset_is_benchmarked_as_a_search_job_runs_it(tmp_path: Path) -> None:
    small = ["--seeds", "0", "--checkpoints", "0.03", "--settings", "5w1s", "--tasks", "2"]
    done = _run(tmp_path, *small, "--oracle-tasks", "1")
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((tmp_path / "out.json").read_text())
    part = report["evals"]["eval:5w1s:0"]
    # the default preset trains one net: that net is meta_best and what the search job adapts
    found = FOUND_SEP.key()
    assert report["meta"]["meta:atnas:0"]["best_encode"] == found
    assert part["meta_best"] == found
    for task in part["tasks"]:
        assert task["encode"]["atnas"] == found
        assert task["evaluations"]["atnas"] <= 1  # adapted, not searched
        assert task["macs"]["atnas"] == task["macs"]["meta_best"]
        # under a Conv-4/32 budget it must search the space for a net that fits
        assert task["macs"]["atnas_le_c32"] <= task["macs"]["conv4_32"]
    assert {"atnas", "meta_best", "conv4_64", "pixel_centroid"} <= set(report["summary"]["5w1s"])
    # each fixed Conv-4 meta-trains at its own rate (the small ones gain from higher rates)
    rates = {
        n: report["meta"][f"meta:{n}:0"]["meta_lr"] for n in ("conv4_64", "conv4_32", "conv4_16")
    }
    assert rates == report["fixed_rates"] == {"conv4_64": 1e-3, "conv4_32": 6e-3, "conv4_16": 6e-3}

    # --reuse keeps a part only when what it depends on is unchanged
    again = _run(tmp_path, *small, "--oracle-tasks", "1", "--reuse")
    assert again.returncode == 0 and "running it again" not in again.stderr, again.stderr[-2000:]
    more = _run(tmp_path, *small, "--oracle-tasks", "2", "--reuse")
    assert more.returncode == 0, more.stderr[-2000:]
    assert "eval:5w1s:0: made with other arguments" in more.stderr
    rerun_parts = [ln for ln in more.stderr.splitlines() if "made with other arguments" in ln]
    assert not any("meta:" in ln for ln in rerun_parts)  # the trained nets are kept
    rate = _run(tmp_path, *small, "--oracle-tasks", "2", "--reuse", "--fixed-rates", "32=3e-3")
    assert rate.returncode == 0, rate.stderr[-2000:]
    rerun_metas = [ln for ln in rate.stderr.splitlines() if "meta:" in ln and "made with" in ln]
    assert len(rerun_metas) == 1, rate.stderr[-2000:]  # only the net whose rate changed
    assert "meta:conv4_32:0: made with other arguments" in rerun_metas[0]
    rerate = json.loads((tmp_path / "out.json").read_text())
    assert rerate["meta"]["meta:conv4_32:0"]["meta_lr"] == 3e-3
    kept = ["--fixed-rates", "32=3e-3"]  # as the last run: only the preset changes
    other = _run(tmp_path, *small, "--oracle-tasks", "2", "--reuse", *kept, "--preset", "small128")
    assert other.returncode == 0, other.stderr[-2000:]
    assert "meta:atnas:0: made with other arguments" in other.stderr
    # the fixed nets train in search64's space whatever the preset: they are kept
    rerun_metas = [ln for ln in other.stderr.splitlines() if "meta:" in ln and "made with" in ln]
    assert len(rerun_metas) == 1, other.stderr[-2000:]
    rerun = json.loads((tmp_path / "out.json").read_text())
    assert rerun["meta"]["meta:atnas:0"]["best_encode"] == FOUND_SMALL.key()  # small128's net
    (tmp_path / "w" / "eval_5w1s_0.json").write_text("{")  # a part cut short mid-write
    cut = _run(tmp_path, *small, "--oracle-tasks", "2", "--reuse", *kept, "--preset", "small128")
    assert cut.returncode == 0, cut.stderr[-2000:]
    assert "eval:5w1s:0: made with other arguments" in cut.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--atnas-set", "focus=0.5"], "meta-trains one fixed net"),
        (["--atnas-set", "nope=1"], "has no field 'nope'"),
        (["--atnas-set", "meta_lr=fast"], "is not JSON"),
        (["--atnas-set", "meta_lr=-1"], "meta_lr must be a positive number"),
        (["--atnas-set", 'inner={"steps": -1}'], "inner steps must be >= 0"),
        (["--preset", "nope"], "invalid choice: 'nope'"),
        (["--fixed-rates", "48=1e-3"], "WIDTH in 64, 32, 16, not '48=1e-3'"),
        (["--fixed-rates", "32"], "WIDTH in 64, 32, 16, not '32'"),
        (["--fixed-rates", "32=fast"], "--fixed-rates 32: 'fast' is not a positive number"),
        (["--fixed-rates", "16=0"], "--fixed-rates 16: '0' is not a positive number"),
    ],
)
def test_bad_settings_stop_in_one_line_before_any_work(
    tmp_path: Path, args: list[str], message: str
) -> None:
    done = _run(tmp_path, *args)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "w").exists()


def test_data_too_small_for_the_preset_stops_in_one_line(tmp_path: Path) -> None:
    # search64 holds classes out for its fitness tasks: 8 training characters are too few
    small = ["--seeds", "0", "--checkpoints", "0.03", "--settings", "5w1s", "--tasks", "2"]
    done = _run(tmp_path, *small, "--preset", "search64")
    assert done.returncode == 2
    assert "bench: error: meta:atnas:0: 5-way tasks need 5 classes" in done.stderr
    assert "Traceback" not in done.stderr
    assert "bench: error: part meta:atnas:0 failed" in done.stderr.splitlines()[-1]
