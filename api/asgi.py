"""ASGI entry for an API-only process: ``uvicorn api.asgi:app`` (settings from ``ATNAS_*``)."""

from __future__ import annotations

from api.app import create_app

app = create_app()
