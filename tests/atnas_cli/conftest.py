"""Fixtures of the CLI tests: the live API server of the API tests, for the client commands."""

from __future__ import annotations

from tests.api.conftest import _uvicorn, server, settings

__all__ = ["_uvicorn", "server", "settings"]
