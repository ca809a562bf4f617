"""``--max-macs``, ``--max-params``, ``--max-latency-ms``: cost bounds of a searched net.

The local ``atnas search`` and the client's ``atnas submit search`` share these options; a bad
value is one line (``atnas: error: …``, exit 2) rather than argparse's usage block.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from atnas_cli.output import CliError

# (option, spec field, converter) of every bound.
_BOUNDS = (
    ("--max-macs", "max_macs", int),
    ("--max-params", "max_params", int),
    ("--max-latency-ms", "max_latency_ms", float),
)


def add_options(p: argparse.ArgumentParser) -> None:
    """Adds the three bounds to ``p`` (strings here, checked by :func:`constraints_of`)."""
    p.add_argument(
        "--max-macs",
        metavar="N",
        default=None,
        help="return a net of at most N multiply-accumulates per image (e.g. 1000000)",
    )
    p.add_argument(
        "--max-params", metavar="N", default=None, help="return a net of at most N parameters"
    )
    p.add_argument(
        "--max-latency-ms",
        metavar="MS",
        default=None,
        help="return a net that runs one image in at most MS milliseconds on this device",
    )


def constraints_of(args: argparse.Namespace) -> dict[str, Any] | None:
    """The bounds given on the command line as a spec's ``constraints``; ``None`` if none."""
    out: dict[str, Any] = {}
    for option, field, kind in _BOUNDS:
        text = getattr(args, field)
        if text is not None:
            out[field] = _positive(option, text, kind)
    return out or None


def _positive(option: str, text: str, kind: type[int] | type[float]) -> int | float:
    """``text`` as a positive finite number of type ``kind``, or a one-line :class:`CliError`."""
    what = "a positive whole number" if kind is int else "a positive number"
    try:
        number = float(text)  # also reads 1e6 and 1_000_000
    except ValueError:
        raise CliError(f"{option}: expected {what}, got {text!r}") from None
    if not (number > 0 and math.isfinite(number)) or (kind is int and not number.is_integer()):
        raise CliError(f"{option}: expected {what}, got {text!r}")
    return int(text) if kind is int and text.strip().isdigit() else kind(number)
