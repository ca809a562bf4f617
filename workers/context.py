"""What a job runner needs: the service's stores, settings, and the shared Ray actors."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray

from service.artifacts import ArtifactStore
from service.datasets import DatasetStore
from service.jobs import JobStore
from service.schemas import ArtifactInfo
from service.settings import Settings
from workers.evaluators import EvaluatorPool
from workers.reasons import StorageError
from workers.runtime import cluster_gpus, default_evaluators

HOLDER_NAME = "atnas-supernet-holder"


@dataclass
class WorkerContext:
    """Stores, settings and lazily created Ray actors shared by the jobs of one dispatcher."""

    settings: Settings
    jobs: JobStore
    datasets: DatasetStore
    artifacts: ArtifactStore
    _pool: EvaluatorPool | None = None
    _holder: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def work_dir(self, job_id: str) -> Path:
        """Scratch folder of a job (checkpoints, exports before they become artifacts)."""
        path = self.settings.data_dir / "work" / job_id
        path.mkdir(parents=True, exist_ok=True)
        return path

    def store(self, job_id: str, name: str, content: Path | bytes) -> ArtifactInfo:
        """Stores artifact ``name`` of the job from a file or bytes.

        A store that cannot take it (disk full, read-only) raises :class:`StorageError`
        naming the artifact, which fails the job with that one line.
        """
        try:
            if isinstance(content, bytes):
                return self.artifacts.put_bytes(job_id, name, content)
            return self.artifacts.put_file(job_id, name, content)
        except OSError as exc:
            raise StorageError(f"could not store artifact {name}: {exc.strerror or exc}") from exc

    @property
    def holder(self) -> Any:
        """The supernet holder actor (one per cluster, found by name)."""
        from workers.holder import SupernetHolder

        with self._lock:
            if self._holder is None:
                self._holder = SupernetHolder.options(  # type: ignore[attr-defined]
                    name=HOLDER_NAME,
                    get_if_exists=True,
                    lifetime="detached" if self.settings.ray_address else None,
                ).remote()
            return self._holder

    @property
    def pool(self) -> EvaluatorPool:
        """The evaluator pool, created on first use."""
        with self._lock:
            if self._pool is None:
                size = self.settings.evaluators or default_evaluators()
                self._pool = EvaluatorPool(size, gpus=cluster_gpus())
            return self._pool

    def shutdown(self) -> None:
        """Stops the actors this context created."""
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown()
                self._pool = None
            if self._holder is not None and not self.settings.ray_address:
                ray.kill(self._holder)
                self._holder = None
