"""What the API process does before serving."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

from api.app import freeze_startup_heap

ROOT = Path(__file__).resolve().parents[2]


def test_freeze_startup_heap_hides_the_live_heap_from_the_collector() -> None:
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    try:
        freeze_startup_heap()
        assert gc.get_freeze_count() > 1000  # every module, class and function loaded so far
    finally:
        gc.unfreeze()


def test_uvicorn_with_a_bad_setting_stops_with_one_line_not_a_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "ATNAS_MODEL_MAX_BATCH": "0", "ATNAS_DATA_DIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "uvicorn", "api.asgi:app", "--port", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stderr == (
        "atnas: error: invalid settings: ATNAS_MODEL_MAX_BATCH='0': "
        "Input should be greater than or equal to 1\n"
    )
    assert not any(tmp_path.iterdir())  # refused before anything was written
