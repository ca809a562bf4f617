"""Liveness and readiness probes."""

from __future__ import annotations

import logging

import redis
from fastapi import APIRouter

from api.deps import ServicesDep
from service.errors import Unavailable
from service.schemas import WorkerHealth

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """Answers while the API process is up."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "Redis or every worker is down"}})
def readyz(services: ServicesDep) -> WorkerHealth:
    """Ready when Redis answers and at least one worker's heartbeat is fresh.

    Open to all (no key needed), so it says only how many workers are alive, never who.
    """
    try:
        services.redis.ping()
    except redis.RedisError as exc:  # the detail may name hosts: the log has it, not the reply
        log.warning("readyz: redis unreachable: %s", exc)
        raise Unavailable("Redis is unreachable") from None
    alive = services.jobs.workers_alive()
    if not alive:
        raise Unavailable("no live worker: no heartbeat from the Ray workers; start them")
    return WorkerHealth(status="ready", redis=True, workers=len(alive))
