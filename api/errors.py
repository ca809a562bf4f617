"""The one place where errors become HTTP responses: ``{"detail": "<reason>"}``, never a trace."""

from __future__ import annotations

import logging
from typing import Any

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from service.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    ServiceError,
    Unauthorized,
    Unavailable,
    UploadTooLarge,
)
from service.schemas import JobKind

log = logging.getLogger(__name__)


class FieldError(BaseModel):
    """One invalid field of a request (422 from request validation)."""

    loc: list[str]
    msg: str
    type: str


class ErrorBody(BaseModel):
    """Every error response: a reason a user can act on; per-field ``errors`` on a 422 that
    request validation raised."""

    detail: str
    errors: list[FieldError] | None = None


# Documented on every /v1 route, so the OpenAPI schema says what errors look like.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in (
        (401, "no API key, or an unknown one (the service has keys)"),
        (404, "no such record (another tenant's is not found either)"),
        (409, "conflicts with the record's state"),
        (413, "the request body or upload is over a limit"),
        (422, "the request is invalid; the reason says what to change"),
        (503, "Redis or the workers are unavailable; retry"),
    )
}

_STATUS: list[tuple[type[ServiceError], int]] = [
    (Unauthorized, 401),
    (NotFound, 404),
    (Conflict, 409),
    (UploadTooLarge, 413),
    (InvalidInput, 422),
    (Unavailable, 503),
]


def status_of(exc: ServiceError) -> int:
    """The HTTP status of a domain error (400 for a family not listed)."""
    for family, status in _STATUS:
        if isinstance(exc, family):
            return status
    return 400


async def _service_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    headers = None
    if isinstance(exc, Unauthorized):  # RFC 6750: say which scheme, and why it failed
        challenge = 'Bearer realm="atnas"'
        if exc.invalid:
            challenge += ', error="invalid_token"'
        headers = {"WWW-Authenticate": challenge}
    return JSONResponse({"detail": exc.reason}, status_code=status_of(exc), headers=headers)


# A tagged union puts the tag into the location (body.meta_train.spec.way); users wrote
# body.spec.way, so the tag is dropped from what they read.
_TAGS = {kind.value for kind in JobKind}


def _loc(loc: tuple[object, ...]) -> list[str]:
    parts = [str(part) for part in loc]
    if len(parts) > 1 and parts[0] == "body" and parts[1] in _TAGS:
        del parts[1]
    return parts


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "loc": _loc(tuple(err.get("loc", ()))),
            "msg": str(err.get("msg", "")),
            "type": str(err.get("type", "")),
        }
        for err in exc.errors()
    ]
    detail = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors)
    return JSONResponse({"detail": detail or "invalid request", "errors": errors}, status_code=422)


async def _redis_down(_: Request, exc: Exception) -> JSONResponse:
    log.warning("redis unreachable: %s", exc)
    return JSONResponse({"detail": "the job store (Redis) is unreachable; retry"}, 503)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"detail": "internal server error"}, status_code=500)


def install(app: FastAPI) -> None:
    """Registers every handler on ``app``."""
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(redis.ConnectionError, _redis_down)
    app.add_exception_handler(redis.TimeoutError, _redis_down)
    app.add_exception_handler(Exception, _unexpected)
