"""ASGI entry for an API-only process: ``uvicorn api.asgi:app`` (settings from ``ATNAS_*``)."""

from __future__ import annotations

from api.app import create_app, freeze_startup_heap

app = create_app()
freeze_startup_heap()
