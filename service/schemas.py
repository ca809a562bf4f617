"""Pydantic models at the boundary: job specs, public views of jobs, datasets and artifacts."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

# Bounds of what a worker can run: numpy's and torch's seeds are unsigned 32-bit values at the
# narrowest; ten million meta-iterations is weeks of GPU time; costs beyond 1e15 are no limit.
MAX_SEED = 2**32 - 1
MAX_ITERATIONS = 10_000_000
MAX_WORKERS = 1024
MAX_COST = 10**15
#: Presets that meta-train one fixed net (no search during meta-training; atnas.presets).
FIXED_NET_PRESETS = ("default", "dense128", "fixed128", "small128", "smallsep", "tinysep")


class JobKind(str, Enum):
    """What a job does."""

    # Meta-train a supernet and a meta-population over the classes of one or more datasets.
    meta_train = "meta_train"
    # Adapt an architecture (and its weights) from a meta-trained supernet to a novel task.
    search = "search"


class JobStatus(str, Enum):
    """Where a job is in its life; the allowed moves are in ``service.states``."""

    # Accepted and waiting in the queue for a worker.
    queued = "queued"
    # A worker has claimed it and is running it.
    running = "running"
    # Finished; ``result`` and the artifacts are final.
    succeeded = "succeeded"
    # Stopped by an error; ``error`` says why.
    failed = "failed"
    # Stopped at a user's request (before or while it ran).
    cancelled = "cancelled"

    @property
    def terminal(self) -> bool:
        """True for statuses a job never leaves."""
        return self in (JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled)


class MetaTrainSpec(BaseModel):
    """What a ``meta_train`` job trains on and how."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    datasets: list[str] = Field(min_length=1, description="ids of uploaded class-folder datasets")
    include: list[str] | None = Field(default=None, description="top-level groups to keep")
    exclude: list[str] | None = Field(default=None, description="top-level groups to drop")
    way: int = Field(default=5, ge=2, le=100)
    shot: int = Field(default=1, ge=1, le=50)
    query: int | None = Field(
        default=None,
        ge=1,
        le=100,
        description="query images per class in training tasks (default: the preset's, 5)",
    )
    rotations: bool = Field(default=True, description="add 90/180/270° copies as new classes")
    focus: float | None = Field(
        default=None,
        ge=0,
        lt=1,
        description="share of the budget, at its end, in which the population's winner alone "
        "trains (0: evolve to the end; default: the preset's, 0.85 for 'search64')",
    )
    final_pick: Literal["fittest", "frugal"] | None = Field(
        default=None,
        description="how the round before the focus picks the net: 'fittest', or 'frugal' — "
        "the cheapest to train among those within one standard error of the fittest, Conv-4 "
        "at every width included (default: the preset's)",
    )
    final_widen: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="extra training cost (a share: 0.1 = 10%) the picked net may take to widen "
        "its cheap late layers to the widest width (0: off; default: the preset's)",
    )
    widen_limit: Literal["pick", "conv4"] | None = Field(
        default=None,
        description="what final_widen is a share of: the picked net's own training cost "
        "('pick'), or Conv-4's at the widest width explored ('conv4'), the first layer then "
        "narrowing (to half at most) to pay for wider late layers (default: the preset's)",
    )
    task_styles: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="share of the training tasks drawn in a random image style (a lower "
        "resolution and/or grey ink, the same for a task's support and query images), for "
        "tasks whose images look unlike the training data (0: off; default: the preset's, 0)",
    )
    algorithm: Literal["fomaml", "maml", "reptile"] = "fomaml"
    preset: Literal[
        "tiny",
        "default",
        "dense128",
        "search64",
        "late128",
        "fixed128",
        "small128",
        "smallsep",
        "tinysep",
        "wide",
        "paper",
    ] = Field(
        default="default",
        description="'default' (the same as 'smallsep'): the widths 32,64,128,128 that AT-NAS's "
        "search found, layers 2-4 separable (1.49M MACs), meta-trained alone at a meta-rate of "
        "3e-3; 'dense128': the default until 2026-12-06, the same widths as conv 3x3 (9.90M "
        "MACs; 'fixed128': the same at 1e-3); 'search64': an "
        "evolutionary search over widths 16-64 during meta-training, then its pick trained "
        "alone; 'small128': an earlier net of <= 3M MACs; "
        "'tinysep': a net of about 1M MACs or less (0.54M); "
        "'tiny': seconds, for smoke tests; 'wide', 'paper': larger spaces (docs/guide.md)",
    )
    budget_seconds: float = Field(default=600, ge=1, le=604800)
    iterations: int | None = Field(default=None, ge=1, le=MAX_ITERATIONS)
    seed: int = Field(default=0, ge=0, le=MAX_SEED)
    image_size: int = Field(default=28, ge=8, le=224)
    channels: Literal[1, 3] = 1
    workers: int | Literal["auto"] = Field(
        default="auto",
        description="Ray workers that meta-train data-parallel (each takes a share of every "
        "meta-batch; gradients all-reduced); 'auto': what one node can place, its GPUs, else "
        "its CPUs",
    )

    @field_validator("workers")
    @classmethod
    def _workers_range(cls, v: int | str) -> int | str:
        if isinstance(v, int) and not 1 <= v <= MAX_WORKERS:
            raise ValueError(f"workers must be 'auto' or in 1..{MAX_WORKERS}")
        return v

    @model_validator(mode="after")
    def _search_settings_need_a_search(self) -> MetaTrainSpec:
        given = [
            k
            for k in ("focus", "final_pick", "final_widen", "widen_limit")
            if getattr(self, k) is not None
        ]
        if given and self.preset in FIXED_NET_PRESETS:
            raise ValueError(
                f"preset {self.preset!r} meta-trains one fixed net, without a search: "
                f"{', '.join(given)} would do nothing (use the preset 'search64')"
            )
        return self


class ClusterInfo(BaseModel):
    """What the Ray cluster behind the workers can place (published by the dispatchers)."""

    cpus: int = Field(ge=0, description="CPUs in the whole cluster")
    gpus: int = Field(ge=0, description="GPUs in the whole cluster")
    node_cpus: int = Field(ge=0, description="CPUs of the largest node")
    node_gpus: int = Field(ge=0, description="GPUs of the node with most")

    @property
    def max_workers(self) -> int:
        """Training workers the cluster can ever place: one per GPU, else one per CPU."""
        return self.gpus if self.gpus else self.cpus

    @property
    def auto_workers(self) -> int:
        """What ``workers: "auto"`` means: one node's GPUs, else its CPUs (at least 1)."""
        return max(1, self.node_gpus if self.gpus else self.node_cpus)


class SearchConstraints(BaseModel):
    """Upper bounds on the cost of the net a search returns; an unset field is unbounded."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_macs: int | None = Field(
        default=None,
        gt=0,
        le=MAX_COST,
        description="multiply-accumulates of one image's forward pass",
    )
    max_params: int | None = Field(
        default=None, gt=0, le=MAX_COST, description="parameters of the net, head included"
    )
    max_latency_ms: float | None = Field(
        default=None,
        gt=0,
        allow_inf_nan=False,
        description="milliseconds per image at batch 1, measured on the worker's device",
    )


class SearchSpec(BaseModel):
    """What a ``search`` job adapts: a supernet (a meta_train job id) to a task dataset."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    supernet: str = Field(min_length=1, description="id of the succeeded meta_train job")
    dataset: str = Field(min_length=1, description="id of an uploaded task dataset")
    budget_seconds: float = Field(default=60, ge=1, le=86400)
    generations: int | None = Field(default=None, ge=1, le=1000)
    population: int | None = Field(default=None, ge=2, le=256)
    seed: int = Field(default=0, ge=0, le=MAX_SEED)
    constraints: SearchConstraints | None = Field(
        default=None, description="cost bounds of the returned net (impossible ones are a 422)"
    )
    pixel_fallback: bool = Field(
        default=True,
        description="with >= 2 shots, ship nearest centroid on pixels when it beats the adapted"
        " net on held-out support images (false: always ship the net)",
    )
    pixel_expert: float = Field(
        default=0.0,
        ge=0,
        le=100,
        description="weight of nearest centroid on pixels multiplied into the adapted net's"
        " probabilities (0: the net alone)",
    )


JobSpec = MetaTrainSpec | SearchSpec


class MetaTrainJobCreate(BaseModel):
    """Body of ``POST /v1/jobs`` for a meta_train job."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["meta_train"]
    spec: MetaTrainSpec

    @property
    def job_kind(self) -> JobKind:
        """``kind`` as the enum."""
        return JobKind.meta_train


class SearchJobCreate(BaseModel):
    """Body of ``POST /v1/jobs`` for a search job."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["search"]
    spec: SearchSpec

    @property
    def job_kind(self) -> JobKind:
        """``kind`` as the enum."""
        return JobKind.search


# The spec is validated against the schema its ``kind`` names.
JobCreate = Annotated[MetaTrainJobCreate | SearchJobCreate, Field(discriminator="kind")]
job_create_adapter: TypeAdapter[MetaTrainJobCreate | SearchJobCreate] = TypeAdapter(JobCreate)


class Progress(BaseModel):
    """How far a running job is; the worker replaces it at least once per generation."""

    phase: str = Field(description="e.g. 'loading', 'meta_train', 'search', 'export'")
    step: int = Field(default=0, ge=0)
    total: int | None = Field(default=None, ge=0)
    best_fitness: float | None = None
    elapsed: float = Field(default=0.0, ge=0, description="seconds since the job started")
    message: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict, description="per-kind numbers")


class JobPublic(BaseModel):
    """A job as the API shows it."""

    id: str
    kind: JobKind
    status: JobStatus
    spec: MetaTrainSpec | SearchSpec
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    progress: Progress | None = None
    result: dict[str, Any] | None = None
    error: str | None = None


class JobPage(BaseModel):
    """One page of ``GET /v1/jobs``, newest first; pass ``next_cursor`` to get the next."""

    items: list[JobPublic]
    next_cursor: str | None = None


class DatasetPublic(BaseModel):
    """An uploaded dataset as the API shows it."""

    id: str
    filename: str
    size: int = Field(description="bytes of the zip")
    sha256: str
    kind: Literal["classes", "task"]
    classes: list[str] = Field(description="class names (support classes for a task dataset)")
    counts: dict[str, int] = Field(description="images per class (support images for a task)")
    groups: list[str] = Field(description="top-level groups, e.g. Omniglot alphabets")
    query_counts: dict[str, int] | None = Field(
        default=None, description="images per query class (task datasets with a query/ folder)"
    )
    created_at: datetime


class ArtifactInfo(BaseModel):
    """One file a job produced."""

    name: str
    size: int
    sha256: str


class SupernetPublic(BaseModel):
    """A meta-supernet that search jobs can use: a succeeded meta_train job."""

    id: str = Field(description="the meta_train job's id; pass it as SearchSpec.supernet")
    created_at: datetime
    way: int
    shot: int
    summary: dict[str, Any]


class WorkerHealth(BaseModel):
    """Body of ``GET /readyz``."""

    status: Literal["ready"]
    redis: bool
    workers: int = Field(description="workers whose heartbeat is fresh")
