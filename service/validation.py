"""Checks of job specs against the data they name, run before anything is queued.

Each failure is an :class:`InvalidSpec` (or :class:`UnknownReference`) whose reason says what to
change. Pure range checks live on the pydantic models; these need Redis.
"""

from __future__ import annotations

from service.datasets import DatasetStore
from service.errors import (
    DatasetInUse,
    DatasetNotFound,
    InvalidSpec,
    JobNotFound,
    UnknownReference,
)
from service.ids import shown
from service.jobs import JobStore
from service.layout import group_of
from service.schemas import (
    ClusterInfo,
    DatasetPublic,
    JobKind,
    JobPublic,
    JobSpec,
    JobStatus,
    MetaTrainSpec,
    SearchConstraints,
    SearchSpec,
)


def validate_spec(
    kind: JobKind,
    spec: JobSpec,
    jobs: JobStore,
    datasets: DatasetStore,
    tenant: str | None = None,
) -> None:
    """Raises an :class:`InvalidSpec` when ``spec`` cannot run on the data it names; with a
    ``tenant``, another tenant's datasets and supernets are unknown references."""
    if kind is JobKind.meta_train and isinstance(spec, MetaTrainSpec):
        validate_meta_train(spec, datasets, tenant)
        check_workers(spec, jobs.cluster())
    elif kind is JobKind.search and isinstance(spec, SearchSpec):
        validate_search(spec, jobs, datasets, tenant)
    else:
        raise InvalidSpec(f"the spec does not match the job kind {kind.value!r}")


# Every preset holds out this share of the meta-training classes (atnas.presets'
# ``fitness_fraction``; a test keeps the two equal) to score the population's architectures.
FITNESS_FRACTION = 0.1


def fitness_held_out(n_classes: int) -> int:
    """Classes the worker holds out for fitness, as ``atnas.data.ImageSet.split`` counts them."""
    return min(max(1, round(FITNESS_FRACTION * n_classes)), n_classes - 1)


def validate_meta_train(
    spec: MetaTrainSpec, datasets: DatasetStore, tenant: str | None = None
) -> int:
    """Checks a meta_train spec; returns the number of selected classes (before rotations).

    Every dataset must exist and be a class-folder dataset; include/exclude must name known
    groups; the selection must hold at least ``way`` classes (rotations count 4x) and every
    selected class at least ``shot + 1`` images.
    """
    if len(set(spec.datasets)) != len(spec.datasets):
        raise InvalidSpec("spec.datasets lists a dataset more than once")
    records = [_dataset(datasets, ds_id, "spec.datasets", tenant) for ds_id in spec.datasets]
    for ds in records:
        if ds.kind != "classes":
            raise InvalidSpec(
                f"dataset {ds.id!r} is a task dataset (support/ and query/); meta_train needs "
                "class-folder datasets"
            )
    known = {g for ds in records for g in ds.groups}
    for label, chosen in (("include", spec.include), ("exclude", spec.exclude)):
        unknown = sorted(set(chosen or ()) - known)
        if unknown:
            raise InvalidSpec(
                f"spec.{label}: unknown group(s) {unknown}; the datasets' groups are "
                f"{sorted(known)}"
            )
    selected = [
        (ds, name)
        for ds in records
        for name in ds.classes
        if (spec.include is None or group_of(name) in spec.include)
        and (spec.exclude is None or group_of(name) not in spec.exclude)
    ]
    if not selected:
        raise InvalidSpec("the include/exclude selection leaves no class")
    factor = 4 if spec.rotations else 1
    available = len(selected) * factor
    rotated = " (rotations included)" if spec.rotations else ""
    if spec.way > available:
        raise InvalidSpec(
            f"{spec.way}-way tasks need {spec.way} classes; the selection has "
            f"{available}{rotated}: lower spec.way or select more classes"
        )
    held = fitness_held_out(len(selected))
    if held * factor < spec.way or (len(selected) - held) * factor < spec.way:
        raise InvalidSpec(
            f"{spec.way}-way tasks need {spec.way} classes on each side of the fitness hold-out "
            f"({FITNESS_FRACTION:.0%} of the {len(selected)} selected classes, at least one, "
            f"scores the architectures); the hold-out has {held * factor}{rotated}, training "
            f"{(len(selected) - held) * factor}: lower spec.way or select more classes"
        )
    need = spec.shot + 1
    for ds, name in selected:
        if ds.counts[name] < need:
            raise InvalidSpec(
                f"class {name!r} of dataset {ds.id!r} has {ds.counts[name]} image(s); "
                f"{spec.shot}-shot tasks need at least {need} per class: lower spec.shot or "
                "exclude its group"
            )
    return len(selected)


def check_workers(spec: MetaTrainSpec, cluster: ClusterInfo | None) -> None:
    """Refuses more training workers than the cluster can ever place (a job that would wait for
    ever). Unknown until a dispatcher has published the cluster's size: then not checked."""
    if cluster is None or spec.workers == "auto" or spec.workers <= cluster.max_workers:
        return
    unit = "GPU" if cluster.gpus else "CPU"
    raise InvalidSpec(
        f"spec.workers: {spec.workers} workers cannot be placed; the cluster has "
        f"{cluster.cpus} CPUs and {cluster.gpus} GPUs, so at most {cluster.max_workers} "
        f"(one per {unit}): lower spec.workers or use 'auto'"
    )


def validate_search(
    spec: SearchSpec, jobs: JobStore, datasets: DatasetStore, tenant: str | None = None
) -> None:
    """Checks a search spec: a succeeded meta_train supernet, a task dataset of 2+ classes and
    MAC and parameter bounds that some net of the supernet's space meets."""
    try:
        supernet = jobs.get(spec.supernet, tenant)
    except JobNotFound:
        raise UnknownReference(
            f"spec.supernet: no supernet with id {shown(spec.supernet)} (see GET /v1/supernets)"
        ) from None
    if supernet.kind is not JobKind.meta_train:
        raise InvalidSpec(
            f"spec.supernet: job {spec.supernet!r} is a {supernet.kind.value} job; a supernet "
            "is made by a meta_train job"
        )
    if supernet.status is not JobStatus.succeeded:
        raise InvalidSpec(
            f"spec.supernet: meta_train job {spec.supernet!r} is {supernet.status.value}; only a "
            "succeeded one can be searched"
        )
    ds = _dataset(datasets, spec.dataset, "spec.dataset", tenant)
    if ds.kind != "task":
        raise InvalidSpec(
            f"spec.dataset: dataset {ds.id!r} is not a task dataset; a search needs a zip with "
            "support/<class>/ folders (and optionally query/<class>/)"
        )
    if len(ds.classes) < 2:
        raise InvalidSpec(
            f"spec.dataset: the task of dataset {ds.id!r} has {len(ds.classes)} class; "
            "at least 2 are needed"
        )
    if spec.constraints is not None:
        check_constraints(spec.constraints, supernet, len(ds.classes))


def smallest_cost(floor: dict[str, dict[str, int]], n_way: int) -> tuple[int, int]:
    """(MACs, params) of the cheapest net for ``n_way`` classes, from a supernet's cost floor.

    ``floor`` is the ``cost_floor`` of a meta_train job's result: the cheapest body ending at
    each last-layer width; a linear head over ``n_way`` classes adds ``n_way * width`` MACs and
    ``n_way * width + n_way`` parameters (see ``atnas.limits.body_floor``).
    """
    macs = min(c + n_way * int(w) for w, c in floor["macs"].items())
    params = min(c + n_way * int(w) + n_way for w, c in floor["params"].items())
    return macs, params


def check_constraints(constraints: SearchConstraints, supernet: JobPublic, n_way: int) -> None:
    """Raises :class:`InvalidSpec` when no net of the supernet's space meets the MAC or
    parameter bound. Latency is measured by the worker (a job error there, not a 422); a
    supernet trained before ``cost_floor`` was recorded is checked by the worker too."""
    floor = (supernet.result or {}).get("cost_floor")
    if not floor:
        return
    macs, params = smallest_cost(floor, n_way)
    if constraints.max_macs is not None and constraints.max_macs < macs:
        raise InvalidSpec(
            f"spec.constraints.max_macs: {constraints.max_macs} cannot be met; the smallest net "
            f"of this supernet's space costs {macs} MACs for {n_way} classes"
        )
    if constraints.max_params is not None and constraints.max_params < params:
        raise InvalidSpec(
            f"spec.constraints.max_params: {constraints.max_params} cannot be met; the smallest "
            f"net of this supernet's space has {params} parameters for {n_way} classes"
        )


def _dataset(
    datasets: DatasetStore, dataset_id: str, field: str, tenant: str | None
) -> DatasetPublic:
    try:
        return datasets.get(dataset_id, tenant)
    except DatasetNotFound:
        raise UnknownReference(f"{field}: no dataset with id {shown(dataset_id)}") from None


def datasets_of(spec: JobSpec) -> set[str]:
    """The ids of the datasets a job spec reads."""
    if isinstance(spec, MetaTrainSpec):
        return set(spec.datasets)
    return {spec.dataset}


def check_dataset_unused(dataset_id: str, jobs: JobStore) -> None:
    """Raises :class:`DatasetInUse` when a queued or running job reads ``dataset_id``."""
    for status in (JobStatus.queued, JobStatus.running):
        cursor: str | None = None
        while True:
            page, cursor = jobs.list(status=status, limit=1000, cursor=cursor)
            for job in page:
                if dataset_id in datasets_of(job.spec):
                    raise DatasetInUse(
                        f"dataset {dataset_id!r} is read by {status.value} job {job.id!r}; "
                        "cancel the job or wait for it to finish, then delete the dataset"
                    )
            if cursor is None:
                break
