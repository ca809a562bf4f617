"""Fixtures of the service tests: stores over the parametrized Redis."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from service.datasets import DatasetStore
from service.jobs import JobStore
from service.keys import Keys


@pytest.fixture
def keys(key_prefix: str) -> Keys:
    return Keys(key_prefix)


@pytest.fixture
def jobs(redis_client: redis.Redis, keys: Keys) -> JobStore:
    return JobStore(redis_client, keys)


@pytest.fixture
def datasets(redis_client: redis.Redis, keys: Keys, tmp_path: Path) -> DatasetStore:
    return DatasetStore(redis_client, keys, tmp_path / "datasets")
