"""The shape of the ids the service hands out, checked before an id reaches Redis or the disk.

Jobs and datasets are named by ``uuid4().hex``: 32 lowercase hex digits. Anything else cannot
name a record, so it is answered as unknown at once, and never echoed back whole.

Example:
    >>> is_id("8ba797c783e141aa878736be5fafe894"), is_id("x:cancel")
    (True, False)
    >>> shown("a" * 100)
    "'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa…' (100 characters)"
"""

from __future__ import annotations

import re
import uuid

_ID = re.compile(r"[0-9a-f]{32}")
_SHOWN = 40


def new_id() -> str:
    """A fresh id: 32 random lowercase hex digits."""
    return uuid.uuid4().hex


def is_id(value: str) -> bool:
    """Whether ``value`` has the shape of an id this service hands out."""
    return _ID.fullmatch(value) is not None


def shown(value: str) -> str:
    """``value`` as it appears in an error message: quoted, cut to a bounded length."""
    if len(value) <= _SHOWN:
        return repr(value)
    return f"{value[:_SHOWN]!r}"[:-1] + f"…' ({len(value)} characters)"
