"""A live atnas API over real HTTP: uvicorn in a background thread on a free port."""

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


@pytest.fixture
def settings(tmp_path: Path, key_prefix: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data", key_prefix=key_prefix, max_upload_bytes=MAX_UPLOAD_BYTES
    )


@pytest.fixture
def server(settings: Settings, redis_client: redis.Redis) -> Iterator[LiveServer]:
    app = create_app(settings, redis=redis_client)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    url = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=url, timeout=10) as http, AtnasClient(url) as client:
        yield LiveServer(url, app.state.services, http, client)
    uv.should_exit = True
    thread.join(timeout=10)
    sock.close()
