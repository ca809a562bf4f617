"""ASGI entry for an API-only process: ``uvicorn api.asgi:app`` (settings from ``ATNAS_*``).

A setting that does not validate stops the process with one line on stderr, as ``atnas serve``
does, not a traceback.
"""

from __future__ import annotations

from pydantic import ValidationError

from api.app import create_app, freeze_startup_heap
from service.invalid import invalid_message

try:
    app = create_app()
except ValidationError as exc:
    raise SystemExit(f"atnas: error: {invalid_message(exc)}") from None
freeze_startup_heap()
