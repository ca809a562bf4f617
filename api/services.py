"""The service objects one app instance works with, built once from the settings."""

from __future__ import annotations

from dataclasses import dataclass

from redis import Redis

from service.artifacts import ArtifactStore
from service.datasets import DatasetStore
from service.jobs import JobStore
from service.keys import Keys
from service.settings import Settings


@dataclass(frozen=True)
class Services:
    """Settings, the Redis client and the stores built on it."""

    settings: Settings
    redis: Redis
    jobs: JobStore
    datasets: DatasetStore
    artifacts: ArtifactStore

    @classmethod
    def build(cls, settings: Settings, r: Redis) -> Services:
        """Stores over ``r`` under ``settings.key_prefix`` and ``settings.data_dir``."""
        keys = Keys(settings.key_prefix)
        return cls(
            settings=settings,
            redis=r,
            jobs=JobStore(r, keys, idempotency_ttl_s=settings.idempotency_ttl_s),
            datasets=DatasetStore(r, keys, settings.datasets_dir),
            artifacts=ArtifactStore(settings.artifacts_dir),
        )
