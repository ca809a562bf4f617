"""The images of a predict request: multipart files, or base64 strings in JSON.

The body is already bounded by :class:`api.body_limit.BodyLimit` (``ATNAS_MAX_REQUEST_BYTES``),
so it is read whole; the number of images is checked here (413 past the limit), whether they
decode is checked where they are decoded, next to the model (``workers.serving``).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.datastructures import UploadFile
from starlette.requests import Request

from service.errors import InvalidInput
from service.models import InvalidImage, PredictRequest
from service.serving import check_count

FIELD = "files"
# Room above any sane limit: the count is checked after parsing, so that it is a 413 naming
# the limit rather than the multipart parser's 400.
_PARSER_MAX_FILES = 100_000

OPENAPI_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [FIELD],
                    "properties": {
                        FIELD: {"type": "array", "items": {"type": "string", "format": "binary"}}
                    },
                }
            },
            "application/json": {"schema": PredictRequest.model_json_schema()},
        },
    }
}


async def read_images(request: Request, limit: int) -> list[tuple[str, bytes]]:
    """``(name, file bytes)`` of every image in the request, in order.

    Multipart: every file part (any field name; ``files`` by convention), named by its
    filename. JSON: ``{"images": ["<base64>", ...]}``, named ``image 0``, ``image 1``, ...
    Raises :class:`InvalidImage` (422) for an empty image or bad base64, :class:`TooManyImages`
    (413) past ``limit``, and 422 for another content type or malformed JSON.
    """
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        images = await _multipart(request)
    elif ctype == "application/json":
        images = _base64_images(await request.body(), limit)
    else:
        raise InvalidInput(
            f"content type {ctype or 'none'!r}: send images as multipart/form-data files "
            f'(field {FIELD!r}) or as application/json {{"images": [base64, ...]}}'
        )
    check_count(len(images), limit)
    for name, data in images:
        if not data:
            raise InvalidImage(f"{name}: empty file")
    return images


async def _multipart(request: Request) -> list[tuple[str, bytes]]:
    async with request.form(max_files=_PARSER_MAX_FILES) as form:
        out: list[tuple[str, bytes]] = []
        for _, value in form.multi_items():
            if isinstance(value, UploadFile):
                name = value.filename or f"file {len(out)}"
                out.append((name, await value.read()))
        return out


def _base64_images(body: bytes, limit: int) -> list[tuple[str, bytes]]:
    try:
        parsed = PredictRequest.model_validate_json(body)
    except ValidationError as exc:
        errors = [{**err, "loc": ("body", *err.get("loc", ()))} for err in exc.errors()]
        raise RequestValidationError(errors) from None
    check_count(len(parsed.images), limit)  # before decoding any of them
    out: list[tuple[str, bytes]] = []
    for i, text in enumerate(parsed.images):
        name = f"image {i}"
        try:
            out.append((name, base64.b64decode(text, validate=True)))
        except (binascii.Error, ValueError):
            raise InvalidImage(f"{name}: not valid base64") from None
    return out
