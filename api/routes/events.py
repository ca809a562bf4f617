"""/v1/jobs/{id}/events: a job's status and progress as server-sent events, until it ends.

The stream opens with the job as it is now (``event: status``), then sends one event per
change: ``status`` when the status moved, ``progress`` when only the progress did. Each
``data`` is the job as ``GET /v1/jobs/{id}`` returns it. After the terminal status (succeeded,
failed, cancelled) the stream closes. A job removed meanwhile ends it with ``event: gone``.

Why a plain ``StreamingResponse`` and not sse-starlette: the wire format is a few lines
(``api.sse``), the loop must poll the job store anyway (workers write progress to Redis, there
is no publish to subscribe to), and one dependency fewer for the API image. What the library
would add, keep-alive comments and stopping on a client disconnect, is done here explicitly:
a comment every ``KEEP_ALIVE_S`` seconds, and the loop checks for a disconnect each poll.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from redis.exceptions import RedisError

from api.deps import ServicesDep, TenantDep
from api.sse import KEEP_ALIVE, format_event
from service.errors import JobNotFound
from service.jobs import JobRecord

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

# How often the loop reads the job: progress is written at most every 0.5 s by the workers.
POLL_S = 0.3
# A comment this often keeps proxies and clients from closing an idle stream of a long job.
KEEP_ALIVE_S = 15.0
# Tells a browser's EventSource how long to wait before it reconnects (milliseconds).
RETRY_MS = 2000

_open = 0  # streams being served by this process (changed on the event loop only)


def open_streams() -> int:
    """How many event streams this process is serving now."""
    return _open


async def job_stream(
    first: JobRecord,
    fetch: Callable[[], Awaitable[JobRecord]],
    disconnected: Callable[[], Awaitable[bool]],
    poll_s: float = POLL_S,
    keep_alive_s: float = KEEP_ALIVE_S,
) -> AsyncIterator[str]:
    """The event stream of one job, starting from ``first``; ``fetch`` re-reads the job.

    Stops after the terminal status, when the job is gone, on a Redis error (an ``error``
    event), or as soon as ``disconnected()`` says the client left.
    """
    global _open
    _open += 1
    try:
        async for chunk in _events(first, fetch, disconnected, poll_s, keep_alive_s):
            yield chunk
    finally:  # also when the server cancels the generator (a client gone mid-send)
        _open -= 1


async def _events(
    first: JobRecord,
    fetch: Callable[[], Awaitable[JobRecord]],
    disconnected: Callable[[], Awaitable[bool]],
    poll_s: float,
    keep_alive_s: float,
) -> AsyncIterator[str]:
    seq = 0
    yield f"retry: {RETRY_MS}\n" + format_event("status", first.public().model_dump_json(), seq)
    last, quiet_since = first, time.monotonic()
    while not last.status.terminal:
        await asyncio.sleep(poll_s)
        if await disconnected():
            return
        try:
            job = await fetch()
        except JobNotFound as exc:
            yield format_event("gone", _detail(exc.reason), seq + 1)
            return
        except RedisError as exc:
            yield format_event("error", _detail(f"the job store is unreachable: {exc}"), seq + 1)
            return
        if job.status != last.status or job.progress != last.progress:
            seq += 1
            kind = "status" if job.status != last.status else "progress"
            yield format_event(kind, job.public().model_dump_json(), seq)
            last, quiet_since = job, time.monotonic()
        elif time.monotonic() - quiet_since >= keep_alive_s:
            yield KEEP_ALIVE
            quiet_since = time.monotonic()


def _detail(reason: str) -> str:
    return json.dumps({"detail": reason})


@router.get(
    "/{job_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "the event stream"}},
)
async def job_events(
    job_id: str, request: Request, services: ServicesDep, tenant: TenantDep
) -> StreamingResponse:
    """Streams the job's status and progress changes as server-sent events until it ends."""
    r = services.async_redis()
    # Read once before the stream opens, so that an unknown job is a plain 404.
    first = await services.jobs.get_async(r, job_id, tenant)

    async def fetch() -> JobRecord:
        return await services.jobs.get_async(r, job_id, tenant)

    return StreamingResponse(
        # The module's settings are read per request (tests shorten the keep-alive).
        job_stream(first, fetch, request.is_disconnected, POLL_S, KEEP_ALIVE_S),
        media_type="text/event-stream",
        # No caching, and no buffering by a proxy in front (nginx honours X-Accel-Buffering).
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
