"""The one-line reason a failed job shows: no traceback, no colour codes, bounded length.

Example:
    >>> one_line("\\x1b[31mTraceback (most recent call last):\\n  File x\\nValueError: bad")
    'ValueError: bad'
    >>> reason(PermissionError(13, "Permission denied", "/data/artifacts"))
    "storage error: [Errno 13] Permission denied: '/data/artifacts'"
"""

from __future__ import annotations

import re

from atnas.errors import AtnasError
from service.errors import ServiceError

MAX_CHARS = 500
# CSI sequences (colours, cursor moves) and the two-byte escapes; what terminals render.
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
_TRACEBACK = "Traceback (most recent call last)"


class StorageError(Exception):
    """A job's output could not be stored (disk full, read-only); the message names which."""


def one_line(text: str, limit: int = MAX_CHARS) -> str:
    """``text`` as one line of at most ``limit`` characters.

    Colour codes are dropped; of a traceback only its last line (the exception) is kept;
    other line breaks become ``" / "``; a longer text is cut with ``…``.
    """
    text = _ANSI.sub("", text)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if any(_TRACEBACK in ln for ln in lines):
        lines = lines[-1:]
    flat = " / ".join(" ".join(ln.split()) for ln in lines)
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def reason(exc: BaseException) -> str:
    """What a user is told about ``exc``: its own message when it was raised on purpose
    (atnas, service and storage errors), the failed file operation for an ``OSError``, else
    a pointer to the worker log (which has the traceback)."""
    if isinstance(exc, AtnasError | ServiceError | StorageError):
        return one_line(str(exc))
    if isinstance(exc, OSError):
        return one_line(f"storage error: {exc}")
    return one_line(f"internal error ({type(exc).__name__}: {exc}); see the worker log")
