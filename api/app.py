"""The app factory: ``create_app(settings)`` gives a ready FastAPI application.

Example:
    >>> app = create_app(Settings(data_dir=Path("/tmp/atnas")))  # doctest: +SKIP
    >>> uvicorn.run(app, host="127.0.0.1", port=8000)             # doctest: +SKIP
"""

from __future__ import annotations

import gc

from fastapi import Depends, FastAPI
from redis import Redis

from api import dashboard, errors
from api import metrics as prometheus_metrics
from api.body_limit import BodyLimit
from api.deps import get_tenant
from api.routes import datasets, events, health, jobs, supernets
from api.routes import models as model_routes
from api.services import Services
from service.auth import check_exposure
from service.incoming import sweep_stale_parts
from service.redis_conn import connect
from service.serving import ModelRuntime, restore_in_background
from service.settings import Settings


def create_app(
    settings: Settings | None = None,
    redis: Redis | None = None,
    model_runtime: ModelRuntime | None = None,
) -> FastAPI:
    """The atnas REST API over ``settings`` (read from ``ATNAS_*`` when None).

    ``model_runtime`` serves models (``workers.serving.RayServeRuntime``, built by the process
    that has Ray); the stored models are redeployed on it in a background thread. Without one,
    ``/v1/models`` answers 503.

    ``redis`` overrides the connection that ``settings`` would open (tests pass one); it must
    have ``decode_responses=True``. Raises ``AuthConfigError`` for malformed API keys, or
    when no key is set and ``settings.host`` is not a loopback address. Removes the ``.part``
    files that a crashed process left in the uploads folder (``service.incoming``).
    """
    settings = settings or Settings()
    services = Services.build(
        settings, redis if redis is not None else connect(settings), model_runtime
    )
    check_exposure(services.keys, settings.host)
    sweep_stale_parts(settings.datasets_dir)
    app = FastAPI(
        title="atnas",
        summary="Across-task neural architecture search as a service",
        version="0.1.0",
    )
    app.state.services = services
    errors.install(app)
    # Every /v1 route needs a key (when keys exist).
    for module in (datasets, jobs, events, supernets):
        app.include_router(
            module.router, dependencies=[Depends(get_tenant)], responses=errors.ERROR_RESPONSES
        )
    app.include_router(
        model_routes.router, dependencies=[Depends(get_tenant)], responses=errors.ERROR_RESPONSES
    )
    app.include_router(health.router)
    app.include_router(prometheus_metrics.router)  # GET /metrics: open, numbers only
    dashboard.install(app)  # GET / and its static files: public, they hold no data
    app.add_middleware(BodyLimit, limit=settings.max_request_bytes)
    if model_runtime is not None:
        app.state.model_restore = restore_in_background(services.models)
    return app


def freeze_startup_heap() -> None:
    """Moves every object alive now out of the garbage collector's sight (``gc.freeze``).

    Call once the app is built, before serving. The start-up heap (FastAPI, pydantic, Redis,
    and Ray and torch when a dispatcher runs in the same process) never becomes garbage, yet
    each full collection walked all of it: with 32 busy clients on 2 cores that stalled the
    event loop for ~120 ms about once a second, which was the API's whole p99 latency
    (``benchmarks/serving.py``: GET p99 126 ms before, 17 ms after).
    """
    gc.collect()
    gc.freeze()
