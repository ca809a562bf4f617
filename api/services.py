"""The service objects one app instance works with, built once from the settings."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from weakref import WeakKeyDictionary

from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from service.artifacts import ArtifactStore
from service.auth import KeyRing
from service.datasets import DatasetStore
from service.jobs import JobStore
from service.keys import Keys
from service.models import ModelStore
from service.redis_conn import async_twin
from service.serving import ModelManager, ModelRuntime
from service.settings import Settings
from service.zipcheck import UploadLimits


@dataclass(frozen=True)
class Services:
    """Settings, the Redis client and the stores built on it."""

    settings: Settings
    redis: Redis
    jobs: JobStore
    datasets: DatasetStore
    artifacts: ArtifactStore
    models: ModelManager  # served models; 503s when the process has no model runtime (Ray)
    keys: KeyRing = field(default_factory=KeyRing)
    _async: WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncRedis] = field(
        default_factory=WeakKeyDictionary, repr=False, compare=False
    )

    def async_redis(self) -> AsyncRedis:
        """An asyncio client of the same Redis, one per event loop (made on first use).

        Hot read-only routes use it so that a request never waits for a thread-pool slot.
        """
        loop = asyncio.get_running_loop()
        client = self._async.get(loop)
        if client is None:
            client = self._async[loop] = async_twin(self.redis)
        return client

    @classmethod
    def build(
        cls, settings: Settings, r: Redis, model_runtime: ModelRuntime | None = None
    ) -> Services:
        """Stores over ``r`` under ``settings.key_prefix`` and ``settings.data_dir``; served
        models run on ``model_runtime`` (None: the model routes answer 503)."""
        keys = Keys(settings.key_prefix)
        jobs = JobStore(r, keys, idempotency_ttl_s=settings.idempotency_ttl_s)
        artifacts = ArtifactStore(settings.artifacts_dir)
        models = ModelManager(
            ModelStore(r, keys, settings.models_dir),
            jobs,
            artifacts,
            model_runtime,
            max_images=settings.model_max_images,
        )
        return cls(
            settings=settings,
            redis=r,
            jobs=jobs,
            datasets=DatasetStore(
                r, keys, settings.datasets_dir, limits=UploadLimits.from_settings(settings)
            ),
            artifacts=artifacts,
            models=models,
            keys=KeyRing.from_settings(settings),
        )
