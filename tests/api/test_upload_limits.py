"""Upload limits over real HTTP: each refused with its status and reason, nothing left on disk."""

from __future__ import annotations

import io
import os
import socket
import time
import tracemalloc
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
from fastapi import FastAPI

from api.app import create_app
from api.services import Services
from service.incoming import INCOMING, STALE_AFTER_S
from service.settings import Settings
from tests.api.conftest import LiveServer
from tests.conftest import Zips
from tests.hostile import add_chunk_png, patch_entry, pixel_bomb_png

MiB = 1024 * 1024
PNG = Zips.png()


@pytest.fixture
def settings(tmp_path: Path, key_prefix: str) -> Settings:
    """Small limits, so that each can be crossed with a small zip."""
    return Settings(
        data_dir=tmp_path / "data",
        key_prefix=key_prefix,
        max_upload_bytes=MiB,
        max_upload_entries=20,
        max_image_pixels=64 * 64,
        max_image_bytes=MiB,
        max_uncompressed_bytes=4 * MiB,
        max_folder_depth=3,
    )


def _post(server: LiveServer, data: bytes) -> tuple[int, str]:
    resp = server.http.post("/v1/datasets", files={"file": ("d.zip", data, "application/zip")})
    return resp.status_code, str(resp.json().get("detail"))


def _left_on_disk(server: LiveServer) -> list[Path]:
    root = server.services.settings.datasets_dir
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def _incoming(server: LiveServer) -> list[str]:
    folder = server.services.settings.datasets_dir / INCOMING
    return sorted(os.listdir(folder)) if folder.exists() else []


def _chunk_zip(chunk_bytes: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("cat/1.png", PNG)
        add_chunk_png(zf, "dog/1.png", chunk_bytes)
    return buf.getvalue()


def test_a_png_with_a_64_mib_chunk_is_a_413_naming_it(server: LiveServer) -> None:
    data = _chunk_zip(64 * MiB)
    assert len(data) < 100_000
    tracemalloc.start()
    try:
        status, detail = _post(server, data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert status == 413, detail
    assert detail == (
        f"'dog/1.png' uncompresses to {64 * MiB + 81} bytes, over the limit of {MiB} for one "
        "image (ATNAS_MAX_IMAGE_BYTES)"
    )
    assert peak < 8 * MiB  # client and server together: the chunk was never read
    assert _left_on_disk(server) == [] and _incoming(server) == []


@pytest.mark.parametrize(
    ("image", "found"),
    [
        (pixel_bomb_png(100_000, 100_000), "declares more than 178956970 pixels"),
        (Zips.png(size=65), "is 65x65 = 4225 pixels"),
    ],
    ids=["bomb", "over-the-setting"],
)
def test_too_many_pixels_is_a_413(server: LiveServer, image: bytes, found: str) -> None:
    status, detail = _post(server, Zips.zip({"cat/1.png": PNG, "dog/1.png": image}))
    assert status == 413
    assert detail == f"'dog/1.png' {found}, over the limit of 4096 (ATNAS_MAX_IMAGE_PIXELS)"
    assert _left_on_disk(server) == []


@pytest.mark.parametrize(
    ("members", "status", "detail"),
    [
        (
            {f"c{i}/1.png": PNG for i in range(21)},
            413,
            "the zip has 21 entries, over the limit of 20 (ATNAS_MAX_UPLOAD_ENTRIES)",
        ),
        (
            {"a/1.png": PNG, "w/g/c/d/1.png": PNG},
            422,
            "'w/g/c/d/1.png' is 4 folders deep, over the limit of 3 (ATNAS_MAX_FOLDER_DEPTH)",
        ),
        (
            {"a/1.png": PNG, "b/1.png": PNG, "pad.bin": bytes(5 * MiB)},
            413,
            f"the zip uncompresses to at least {2 * len(PNG) + 5 * MiB} bytes (counting up to "
            f"'pad.bin'), over the limit of {4 * MiB} (ATNAS_MAX_UNCOMPRESSED_BYTES)",
        ),
    ],
    ids=["entries", "depth", "total"],
)
def test_each_limit_answers_with_its_status_and_reason(
    server: LiveServer, members: dict[str, bytes], status: int, detail: str
) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    assert _post(server, buf.getvalue()) == (status, detail)
    assert _left_on_disk(server) == []


def test_a_directory_that_understates_a_size_is_a_422(server: LiveServer) -> None:
    data = patch_entry(_chunk_zip(4 * MiB), "dog/1.png", file_size=1000)
    status, detail = _post(server, data)
    assert status == 422 and detail.startswith("dog/1.png: not a readable image"), detail
    assert _left_on_disk(server) == []


def test_within_the_limits_an_upload_is_kept(server: LiveServer) -> None:
    members = {f"g/c{i}/{j}.png": Zips.png(i, size=64) for i in range(9) for j in range(2)}
    status, _ = _post(server, Zips.zip(members))  # 18 files + 0 folders, 64x64, depth 2
    assert status == 201
    assert [p.name for p in _left_on_disk(server)] == ["data.zip"] and _incoming(server) == []


def test_a_malformed_multipart_body_leaves_nothing(server: LiveServer) -> None:
    resp = server.http.post(
        "/v1/datasets",
        content=b'--XYZ\r\nContent-Disposition: form-data; name="file"; filename="a.zip"\r\n\r\n'
        + b"PK" * 1000
        + b"\r\n--XYZ\r\nno headers then garbage",
        headers={"content-type": "multipart/form-data; boundary=XYZ"},
    )
    assert resp.status_code == 422
    assert _left_on_disk(server) == []


def test_a_client_that_disconnects_mid_body_leaves_nothing(server: LiveServer) -> None:
    url = urlsplit(server.url)
    head = (
        "POST /v1/datasets HTTP/1.1\r\nHost: test\r\n"
        "Content-Type: multipart/form-data; boundary=B\r\nContent-Length: 900000\r\n\r\n"
        '--B\r\nContent-Disposition: form-data; name="file"; filename="a.zip"\r\n\r\n'
    )
    with socket.create_connection((url.hostname, url.port)) as sock:
        sock.sendall(head.encode() + b"PK" * 100_000)
        deadline = time.monotonic() + 5
        while not _incoming(server) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(_incoming(server)) == 1  # the upload is streaming to its .part file
    deadline = time.monotonic() + 5
    while _incoming(server) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _left_on_disk(server) == []


def test_redis_failing_on_commit_leaves_nothing(
    server: LiveServer, _uvicorn: tuple[FastAPI, str], settings: Settings
) -> None:
    with socket.socket() as probe:  # a port where nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dead = redis.Redis(port=port, decode_responses=True, socket_connect_timeout=1)
    app, _ = _uvicorn
    app.state.services = Services.build(settings, dead)
    status, detail = _post(server, Zips.classes({"a": 2, "b": 2}))
    assert status == 503, detail
    assert _left_on_disk(server) == []


def test_building_the_app_sweeps_stale_part_files(
    tmp_path: Path, settings: Settings, redis_client: redis.Redis
) -> None:
    incoming = settings.datasets_dir / INCOMING
    incoming.mkdir(parents=True)
    stale, live = incoming / "upload-crashed.part", incoming / "upload-live.part"
    for path in (stale, live):
        path.write_bytes(b"half an upload")
    then = time.time() - STALE_AFTER_S - 60
    os.utime(stale, (then, then))
    create_app(settings, redis=redis_client)
    assert sorted(os.listdir(incoming)) == [live.name]
