"""Shared CLI output helpers: one-line errors, JSON on request, progress bars on stderr."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn


class CliError(Exception):
    """An error reported as one line on stderr, with exit status 2."""


def fail(message: str, status: int = 2) -> NoReturn:
    """Prints ``atnas: error: message`` and exits."""
    print(f"atnas: error: {message}", file=sys.stderr)
    raise SystemExit(status)


def emit(obj: Any, as_json: bool, human: str) -> None:
    """Writes ``obj`` as JSON on stdout when asked, else the human-readable text."""
    if as_json:
        print(json.dumps(obj, indent=2, default=str))
    else:
        print(human)
