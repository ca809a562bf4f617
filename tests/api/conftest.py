"""A live atnas API over real HTTP: uvicorn in a background thread on a free port.

One server per Redis backend for the session; each test gets fresh service objects (its own
key prefix and data folder) swapped into the running app, so tests never see each other.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis
import uvicorn
from fastapi import FastAPI

from api.app import create_app
from api.client import AtnasClient
from api.services import Services
from service.settings import Settings

MAX_UPLOAD_BYTES = 64 * 1024


@dataclass
class LiveServer:
    """A running API: its URL, its service objects, and clients to call it."""

    url: str
    services: Services
    http: httpx.Client
    client: AtnasClient


@pytest.fixture(scope="session")
def _uvicorn(
    redis_backend: str,
    _embedded_redis: redis.Redis,
    _server_redis: redis.Redis | None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[FastAPI, str]]:
    r = _server_redis if redis_backend == "server" else _embedded_redis
    if r is None:
        pytest.skip("no Redis server at 127.0.0.1:6379")
    settings = Settings(data_dir=tmp_path_factory.mktemp("api"), key_prefix="atnas-test-unused")
    app = create_app(settings, redis=r)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    uv = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    yield app, f"http://127.0.0.1:{port}"
    uv.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture
def settings(tmp_path: Path, key_prefix: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data", key_prefix=key_prefix, max_upload_bytes=MAX_UPLOAD_BYTES
    )


@pytest.fixture
def server(
    _uvicorn: tuple[FastAPI, str], settings: Settings, redis_client: redis.Redis
) -> Iterator[LiveServer]:
    app, url = _uvicorn
    services = Services.build(settings, redis_client)
    app.state.services = services
    with httpx.Client(base_url=url, timeout=10) as http, AtnasClient(url) as client:
        yield LiveServer(url, services, http, client)
