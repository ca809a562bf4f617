"""``atnas serve`` (API + dispatcher, embedded defaults) and ``atnas worker`` (dispatcher only)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger("atnas")


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Registers ``serve`` and ``worker``."""
    p = sub.add_parser(
        "serve",
        help="run the service: REST API, Redis queue, Ray workers (embedded defaults)",
        description="Starts the REST API and, unless --no-worker, a dispatcher on a local Ray "
        "(or the cluster in ATNAS_RAY_ADDRESS). Without ATNAS_REDIS_URL an embedded Redis "
        "keeps its data in the data directory.",
    )
    p.add_argument("--host", default=None, help="bind address (env ATNAS_HOST; default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port (env ATNAS_PORT; default 8000)")
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="datasets, artifacts, embedded Redis (env ATNAS_DATA_DIR; default ./.atnas)",
    )
    p.add_argument(
        "--no-worker", action="store_true", help="API only; run `atnas worker` elsewhere"
    )
    _worker_options(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser(
        "worker",
        help="run a dispatcher (a Ray driver) that claims jobs from the Redis queue",
        description="Runs jobs from the queue on the Ray cluster in ATNAS_RAY_ADDRESS (or a "
        "local one). Needs the same ATNAS_REDIS_URL and ATNAS_DATA_DIR as the API.",
    )
    p.add_argument(
        "--data-dir", type=Path, default=None, help="shared data directory (env ATNAS_DATA_DIR)"
    )
    _worker_options(p)
    p.set_defaults(func=cmd_worker)


def _worker_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--max-jobs", type=int, default=2, help="jobs run at once (default: %(default)s)"
    )
    p.add_argument("--ray-cpus", type=int, default=None, help="CPUs of a local Ray (default: all)")


def _settings(args: argparse.Namespace) -> Any:
    from service.settings import Settings

    overrides: dict[str, Any] = {}
    for name in ("host", "port", "data_dir"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    settings = Settings(**overrides)
    # Ray workers and Tune trials run in other working directories: make the path absolute.
    return settings.model_copy(update={"data_dir": settings.data_dir.resolve()})


def _start_dispatcher(settings: Any, r: Any, args: argparse.Namespace) -> Any:
    from workers.dispatcher import Dispatcher
    from workers.runtime import init_ray

    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    init_ray(settings.ray_address, args.ray_cpus)
    dispatcher = Dispatcher(settings, r, max_jobs=args.max_jobs)
    dispatcher.start()
    return dispatcher


def _model_runtime(settings: Any, with_ray: bool) -> Any:
    """Ray Serve for ``/v1/models`` when this process is a Ray driver (it runs a dispatcher,
    or ATNAS_RAY_ADDRESS names a cluster to attach to); None: the model routes answer 503."""
    if not with_ray and not settings.ray_address:
        return None
    from workers.runtime import init_ray
    from workers.serving import RayServeRuntime

    init_ray(settings.ray_address)  # already done when a dispatcher runs
    return RayServeRuntime(settings)


def _guard(r: Any) -> None:
    """Starts the watchdog that stops this process's Ray processes and its embedded Redis
    server if it dies without cleaning up (:mod:`atnas_cli.watchdog`)."""
    from atnas_cli.watchdog import guard

    owned_redis = [int(r.pid)] if getattr(r, "cleanupregistry", False) and r.pid else []
    guard(owned_redis)


def cmd_serve(args: argparse.Namespace) -> int:
    """Serves the API (and runs a dispatcher) until interrupted."""
    import uvicorn

    from api.app import create_app, freeze_startup_heap
    from service.redis_conn import connect

    settings = _settings(args)
    ring = _check_keys(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    r = connect(settings)
    r.ping()
    _guard(r)
    dispatcher = None if args.no_worker else _start_dispatcher(settings, r, args)
    models = _model_runtime(settings, with_ray=dispatcher is not None)
    app = create_app(settings, r, models)
    from atnas_cli.gc import start_sweeper

    sweeper = start_sweeper(settings, r)
    freeze_startup_heap()
    if models is not None:  # predictions cross threads: see Settings.model_switch_interval_ms
        sys.setswitchinterval(settings.model_switch_interval_ms / 1000)
    log.info(
        "atnas serving on http://%s:%d (data in %s, redis %s)",
        settings.host,
        settings.port,
        settings.data_dir.resolve(),
        settings.redis_url or "embedded",
    )
    if ring.open:
        log.warning(
            "no API keys: the API is open to anyone who can reach %s (loopback only); "
            "`atnas keys add TENANT` makes a key",
            settings.host,
        )
    else:
        log.info("API keys loaded for %d tenant(s)", len(ring.tenants))
    try:
        uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")
    finally:
        sweeper.set()
        if dispatcher is not None:
            dispatcher.stop(timeout=2.0)
            dispatcher.ctx.shutdown()
    return 0


def _check_keys(settings: Any) -> Any:
    """The key ring; a one-line error for malformed keys or an open service bound outside
    loopback (checked before anything starts)."""
    from atnas_cli.output import CliError
    from service.auth import KeyRing, check_exposure
    from service.errors import ServiceError

    try:
        ring = KeyRing.from_settings(settings)
        check_exposure(ring, settings.host)
    except ServiceError as exc:
        raise CliError(exc.reason) from None
    return ring


def cmd_worker(args: argparse.Namespace) -> int:
    """Runs a dispatcher until SIGINT/SIGTERM."""
    import threading

    from service.redis_conn import connect

    settings = _settings(args)
    r = connect(settings)
    r.ping()
    _guard(r)
    dispatcher = _start_dispatcher(settings, r, args)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        while not done.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    dispatcher.stop(timeout=2.0)
    dispatcher.ctx.shutdown()
    print("worker stopped", file=sys.stderr)
    return 0
