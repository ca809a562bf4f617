"""The dashboard: a page at ``/`` over the REST API, from static files inside this package.

Plain HTML, CSS and ES modules in ``static/`` (no build step, nothing fetched at run time:
plots and the architecture drawing are inline SVG made by the page). The files are public,
they hold no data; the page calls ``/v1`` with the API key the user typed once (kept in the
browser's localStorage) when the service has keys.

Example:
    >>> install(app)  # doctest: +SKIP   (create_app does it)
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent / "static"
# Where the assets are served; index.html refers to them under this path.
ASSETS_PATH = "/dashboard"


def install(app: FastAPI) -> None:
    """Serves the page at ``/`` and its assets under ``/dashboard/``."""

    async def index() -> FileResponse:
        """The dashboard page."""
        # Revalidated on every load, so a new version of the service shows its new page.
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    app.add_api_route("/", index, methods=["GET"], include_in_schema=False)
    app.mount(ASSETS_PATH, StaticFiles(directory=STATIC), name="dashboard")
