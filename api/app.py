"""The app factory: ``create_app(settings)`` gives a ready FastAPI application.

Example:
    >>> app = create_app(Settings(data_dir=Path("/tmp/atnas")))  # doctest: +SKIP
    >>> uvicorn.run(app, host="127.0.0.1", port=8000)             # doctest: +SKIP
"""

from __future__ import annotations

from fastapi import FastAPI
from redis import Redis

from api import errors
from api.routes import datasets, health, jobs, supernets
from api.services import Services
from service.redis_conn import connect
from service.settings import Settings


def create_app(settings: Settings | None = None, redis: Redis | None = None) -> FastAPI:
    """The atnas REST API over ``settings`` (read from ``ATNAS_*`` when None).

    ``redis`` overrides the connection that ``settings`` would open (tests pass one); it must
    have ``decode_responses=True``.
    """
    settings = settings or Settings()
    r = redis if redis is not None else connect(settings)
    app = FastAPI(
        title="atnas",
        summary="Across-task neural architecture search as a service",
        version="0.1.0",
    )
    app.state.services = Services.build(settings, r)
    errors.install(app)
    for module in (datasets, jobs, supernets, health):
        app.include_router(module.router)
    return app
