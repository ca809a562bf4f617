"""Streaming a multipart upload straight to disk, counting bytes, without buffering the body."""

from __future__ import annotations

from typing import Any

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request

from service.auth import OPEN_TENANT
from service.datasets import DatasetStore, UploadSink
from service.errors import InvalidInput, UploadTooLarge
from service.schemas import DatasetPublic

FIELD = "file"
# Room for the multipart envelope (boundaries, part headers) around the file itself.
ENVELOPE_BYTES = 64 * 1024

OPENAPI_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [FIELD],
                    "properties": {FIELD: {"type": "string", "format": "binary"}},
                }
            }
        },
    }
}


class _FilePart:
    """Multipart callbacks that send the ``file`` field's bytes to a sink."""

    def __init__(self, sink: UploadSink) -> None:
        self.sink = sink
        self.filename: str | None = None
        self.seen = False
        self._field = b""
        self._value = b""
        self._headers: dict[bytes, bytes] = {}
        self._active = False

    def on_part_begin(self) -> None:
        self._headers = {}
        self._active = False

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._field.lower()] = self._value
        self._field, self._value = b"", b""

    def on_headers_finished(self) -> None:
        disposition, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("latin-1")
        if disposition != b"form-data" or name != FIELD:
            return  # other fields are read and dropped
        if self.seen:
            raise InvalidInput(f"the multipart field {FIELD!r} appears more than once")
        self.seen = self._active = True
        self.filename = options.get(b"filename", b"upload.zip").decode("utf-8", "replace")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._active:
            self.sink.write(data[start:end])

    def on_part_end(self) -> None:
        self._active = False


async def receive_dataset(
    request: Request, store: DatasetStore, max_bytes: int, tenant: str = OPEN_TENANT
) -> DatasetPublic:
    """Streams the ``file`` field of a multipart request into a new dataset.

    The body is parsed as it arrives and written to a temporary file in the datasets folder;
    past ``max_bytes`` (file) or ``max_bytes`` plus a small envelope (whole body) the upload
    stops with :class:`UploadTooLarge` and nothing is kept.
    """
    body_cap = max_bytes + ENVELOPE_BYTES
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > body_cap:
        raise UploadTooLarge(f"the upload exceeds the limit of {max_bytes} bytes")
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise InvalidInput(f"expected a multipart/form-data body with a {FIELD!r} field")
    with store.open_upload(max_bytes) as sink:
        part = _FilePart(sink)
        callbacks: Any = {
            name: getattr(part, name)
            for name in (
                "on_part_begin",
                "on_header_field",
                "on_header_value",
                "on_header_end",
                "on_headers_finished",
                "on_part_data",
                "on_part_end",
            )
        }
        parser = MultipartParser(boundary, callbacks)
        received = 0
        try:
            async for chunk in request.stream():
                received += len(chunk)
                if received > body_cap:
                    raise UploadTooLarge(f"the upload exceeds the limit of {max_bytes} bytes")
                parser.write(chunk)
            parser.finalize()
        except ClientDisconnect:  # nobody reads the answer; a 4xx, not an "unhandled" trace
            raise InvalidInput("the client disconnected before the upload finished") from None
        except MultipartParseError as exc:
            raise InvalidInput(f"malformed multipart body ({exc})") from None
        if not part.seen:
            raise InvalidInput(f"the multipart field {FIELD!r} (the zip) is missing")
        filename = part.filename or "upload.zip"
        return await run_in_threadpool(store.commit_upload, sink, filename, tenant)
