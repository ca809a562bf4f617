"""A failed job's error is one line: no traceback, no colour codes, at most 500 characters."""

from __future__ import annotations

import pytest

from atnas.errors import DatasetError
from service.errors import InvalidSpec
from workers.reasons import MAX_CHARS, StorageError, one_line, reason

# What str() of a Ray Tune trial error looked like (issue 7): a coloured remote traceback.
TUNE_ERROR = (
    "\x1b[36mray::ImplicitFunc.train()\x1b[39m (pid=1234, ip=10.0.0.1, actor_id=abc)\n"
    '  File "/venv/lib/python3.11/site-packages/ray/tune/trainable/trainable.py", line 331\n'
    "    raise skipped from exception_cause(skipped)\n"
    "Traceback (most recent call last):\n"
    '  File "/work/workers/meta_train_job.py", line 70, in train_trial\n'
    "    images = pipeline.load_meta_images(\n" + "    frame\n" * 40 + "\x1b[31m"
    "atnas.errors.DatasetError: class 'x' has 1 image; way 5 needs shot + query = 6\x1b[0m\n"
)


def test_a_coloured_traceback_becomes_its_last_line() -> None:
    assert len(TUNE_ERROR) > 600
    assert one_line(TUNE_ERROR) == (
        "atnas.errors.DatasetError: class 'x' has 1 image; way 5 needs shot + query = 6"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain reason", "plain reason"),
        ("two\nlines  with   spaces\n\n", "two / lines with spaces"),
        ("\x1b[1;31mbold red\x1b[0m", "bold red"),
        ("x" * 2000, "x" * (MAX_CHARS - 1) + "…"),
    ],
)
def test_one_line(text: str, expected: str) -> None:
    out = one_line(text)
    assert out == expected
    assert "\n" not in out and "\x1b" not in out and len(out) <= MAX_CHARS


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (DatasetError("class 'x' has 1 image"), "class 'x' has 1 image"),
        (InvalidSpec("no dataset 'd'"), "no dataset 'd'"),
        (
            OSError(28, "No space left on device", "/data/artifacts/j/supernet.pt"),
            "storage error: [Errno 28] No space left on device: '/data/artifacts/j/supernet.pt'",
        ),
        (
            StorageError("could not store artifact a: Read-only"),
            "could not store artifact a: Read-only",
        ),
        (KeyError("spec"), "internal error (KeyError: 'spec'); see the worker log"),
    ],
    ids=["atnas", "service", "disk", "store", "bug"],
)
def test_reason(exc: Exception, expected: str) -> None:
    assert reason(exc) == expected
