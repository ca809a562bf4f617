from __future__ import annotations

import io

import numpy as np
import pytest

from service.datasets import DatasetStore
from service.errors import DatasetInUse, InvalidSpec, UnknownReference
from service.jobs import JobStore
from service.schemas import ClusterInfo, DatasetPublic, JobKind, MetaTrainSpec, SearchSpec
from service.validation import (
    FITNESS_FRACTION,
    check_dataset_unused,
    fitness_held_out,
    smallest_cost,
    validate_meta_train,
    validate_search,
    validate_spec,
)
from tests.conftest import Zips


def _upload(datasets: DatasetStore, data: bytes) -> DatasetPublic:
    return datasets.create_from_upload(io.BytesIO(data), "x.zip", max_bytes=10**6)


@pytest.fixture
def omni(datasets: DatasetStore, zips: type[Zips]) -> DatasetPublic:
    # 2 alphabets: Latin with 2 characters of 3 images, Greek with 1 character of 2 images.
    return _upload(datasets, zips.classes({"Latin/a": 3, "Latin/b": 3, "Greek/c": 2}, "bg/"))


@pytest.fixture
def task(datasets: DatasetStore, zips: type[Zips]) -> DatasetPublic:
    return _upload(datasets, zips.task({"cat": 1, "dog": 1}, {"cat": 2}))


def _meta(ds: DatasetPublic, **kw: object) -> MetaTrainSpec:
    return MetaTrainSpec.model_validate({"datasets": [ds.id], **kw})


def test_meta_train_ok(omni: DatasetPublic, datasets: DatasetStore) -> None:
    assert validate_meta_train(_meta(omni, way=2, shot=1), datasets) == 3
    # 3 classes x 4 rotations: 1 held out for fitness (4 rotated), 2 to train on (8).
    assert validate_meta_train(_meta(omni, way=4, shot=1), datasets) == 3
    assert validate_meta_train(_meta(omni, way=2, shot=2, include=["Latin"]), datasets) == 2
    assert validate_meta_train(_meta(omni, way=2, exclude=["Greek"]), datasets) == 2


@pytest.mark.parametrize(
    ("kw", "reason"),
    [
        ({"way": 13}, r"13-way tasks need 13 classes; the selection has 12 \(rotations included\)"),
        ({"way": 4, "rotations": False}, "4-way tasks need 4 classes; the selection has 3:"),
        ({"way": 9, "include": ["Latin"]}, "the selection has 8"),
        ({"way": 5}, r"the hold-out has 4 \(rotations included\), training 8: lower"),
        ({"way": 2, "rotations": False, "include": ["Latin"]}, "the hold-out has 1, training 1"),
        (
            {"shot": 2, "way": 2},
            r"class 'Greek/c' of dataset '\w+' has 2 image\(s\); 2-shot tasks need at",
        ),
        ({"include": ["Klingon"]}, r"spec.include: unknown group\(s\) \['Klingon'\]"),
        ({"exclude": ["Latin", "Greek"]}, "leaves no class"),
    ],
)
def test_meta_train_impossible(
    omni: DatasetPublic, datasets: DatasetStore, kw: dict[str, object], reason: str
) -> None:
    with pytest.raises(InvalidSpec, match=reason):
        validate_meta_train(_meta(omni, **kw), datasets)


def test_meta_train_bad_datasets(
    omni: DatasetPublic, task: DatasetPublic, datasets: DatasetStore
) -> None:
    with pytest.raises(UnknownReference, match=r"spec\.datasets: no dataset with id 'nope'"):
        validate_meta_train(MetaTrainSpec(datasets=[omni.id, "nope"]), datasets)
    with pytest.raises(InvalidSpec, match="more than once"):
        validate_meta_train(MetaTrainSpec(datasets=[omni.id, omni.id]), datasets)
    with pytest.raises(InvalidSpec, match="is a task dataset"):
        validate_meta_train(MetaTrainSpec(datasets=[task.id]), datasets)


def _supernet(
    jobs: JobStore,
    omni: DatasetPublic,
    succeed: bool = True,
    result: dict[str, object] | None = None,
) -> str:
    job, _ = jobs.create(JobKind.meta_train, _meta(omni))
    if succeed:
        jobs.start(job.id, "w")
        jobs.succeed(job.id, result or {})
    return job.id


# A meta_train result's cost floor: the cheapest body ending at width 16 or 32. For 2 classes the
# cheapest net is 1000 + 2*16 = 1032 MACs (width 16) and 300 + 2*32 + 2 = 366 params (width 32).
FLOOR = {"macs": {"16": 1000, "32": 1100}, "params": {"16": 400, "32": 300}}


def _search(net: str, task: DatasetPublic, **bounds: object) -> SearchSpec:
    return SearchSpec.model_validate({"supernet": net, "dataset": task.id, "constraints": bounds})


def test_smallest_cost_adds_the_head_per_width() -> None:
    assert smallest_cost(FLOOR, 2) == (1032, 366)
    assert smallest_cost(FLOOR, 20) == (1320, 740)  # many classes: the narrow head wins


@pytest.mark.parametrize(
    ("bounds", "reason"),
    [
        (
            {"max_macs": 1031},
            "spec.constraints.max_macs: 1031 cannot be met; the smallest net of this supernet's "
            "space costs 1032 MACs for 2 classes",
        ),
        (
            {"max_macs": 5000, "max_params": 365},
            "spec.constraints.max_params: 365 cannot be met; the smallest net of this supernet's "
            "space has 366 parameters for 2 classes",
        ),
    ],
)
def test_search_constraints_no_net_meets(
    omni: DatasetPublic,
    task: DatasetPublic,
    jobs: JobStore,
    datasets: DatasetStore,
    bounds: dict[str, object],
    reason: str,
) -> None:
    net = _supernet(jobs, omni, result={"cost_floor": FLOOR})
    with pytest.raises(InvalidSpec) as err:
        validate_search(_search(net, task, **bounds), jobs, datasets)
    assert err.value.reason == reason


def test_search_constraints_that_can_be_met(
    omni: DatasetPublic, task: DatasetPublic, jobs: JobStore, datasets: DatasetStore
) -> None:
    net = _supernet(jobs, omni, result={"cost_floor": FLOOR})
    validate_search(_search(net, task, max_macs=1032, max_params=366), jobs, datasets)
    validate_search(_search(net, task, max_latency_ms=0.001), jobs, datasets)  # the worker's call
    validate_search(_search(net, task), jobs, datasets)
    old = _supernet(jobs, omni)  # trained before cost floors were recorded: the worker checks
    validate_search(_search(old, task, max_macs=1), jobs, datasets)


def test_search_ok(
    omni: DatasetPublic, task: DatasetPublic, jobs: JobStore, datasets: DatasetStore
) -> None:
    spec = SearchSpec(supernet=_supernet(jobs, omni), dataset=task.id)
    validate_search(spec, jobs, datasets)
    validate_spec(JobKind.search, spec, jobs, datasets)


def test_search_bad_supernet(
    omni: DatasetPublic, task: DatasetPublic, jobs: JobStore, datasets: DatasetStore
) -> None:
    with pytest.raises(UnknownReference, match="no supernet with id 'nope'"):
        validate_search(SearchSpec(supernet="nope", dataset=task.id), jobs, datasets)
    queued = _supernet(jobs, omni, succeed=False)
    with pytest.raises(InvalidSpec, match="is queued; only a succeeded one"):
        validate_search(SearchSpec(supernet=queued, dataset=task.id), jobs, datasets)
    net = _supernet(jobs, omni)
    search, _ = jobs.create(JobKind.search, SearchSpec(supernet=net, dataset=task.id))
    with pytest.raises(InvalidSpec, match="is a search job"):
        validate_search(SearchSpec(supernet=search.id, dataset=task.id), jobs, datasets)


def test_search_bad_dataset(
    omni: DatasetPublic, jobs: JobStore, datasets: DatasetStore, zips: type[Zips]
) -> None:
    net = _supernet(jobs, omni)
    with pytest.raises(UnknownReference, match=r"spec\.dataset: no dataset with id 'nope'"):
        validate_search(SearchSpec(supernet=net, dataset="nope"), jobs, datasets)
    with pytest.raises(InvalidSpec, match="is not a task dataset"):
        validate_search(SearchSpec(supernet=net, dataset=omni.id), jobs, datasets)
    one = _upload(datasets, zips.task({"cat": 3}))
    with pytest.raises(InvalidSpec, match="has 1 class; at least 2"):
        validate_search(SearchSpec(supernet=net, dataset=one.id), jobs, datasets)


def test_spec_of_wrong_kind(omni: DatasetPublic, jobs: JobStore, datasets: DatasetStore) -> None:
    with pytest.raises(InvalidSpec, match="does not match the job kind"):
        validate_spec(JobKind.search, _meta(omni), jobs, datasets)


def test_dataset_in_use_by_queued_or_running_jobs_only(jobs: JobStore) -> None:
    train, _ = jobs.create(JobKind.meta_train, MetaTrainSpec(datasets=["d1", "d2"]))
    search, _ = jobs.create(JobKind.search, SearchSpec(supernet="s", dataset="t1"))
    jobs.start(search.id, "w")
    with pytest.raises(DatasetInUse, match=f"read by queued job '{train.id}'"):
        check_dataset_unused("d2", jobs)
    with pytest.raises(DatasetInUse, match=f"read by running job '{search.id}'"):
        check_dataset_unused("t1", jobs)
    check_dataset_unused("other", jobs)
    jobs.request_cancel(train.id)  # a queued job is cancelled at once
    check_dataset_unused("d2", jobs)


def test_the_fitness_hold_out_matches_the_workers() -> None:
    from atnas.data import ImageSet
    from atnas.presets import PRESETS

    assert {p.fitness_fraction for p in PRESETS.values()} == {FITNESS_FRACTION}
    for n in (2, 3, 14, 15, 16, 44, 45, 964):
        images = ImageSet(
            names=[f"c{i}" for i in range(n)],
            groups=["g"] * n,
            images=np.zeros((n, 1, 2, 2), dtype=np.uint8),
            class_index=[np.array([i]) for i in range(n)],
        )
        _, held = images.split(FITNESS_FRACTION, seed=0)
        assert held.num_classes == fitness_held_out(n), n


def test_workers_beyond_the_cluster_are_refused(
    omni: DatasetPublic, datasets: DatasetStore, jobs: JobStore
) -> None:
    spec = _meta(omni, way=2, workers=3)
    validate_spec(JobKind.meta_train, spec, jobs, datasets)  # cluster unknown: not checked
    jobs.publish_cluster(ClusterInfo(cpus=2, gpus=0, node_cpus=2, node_gpus=0), ttl_s=60)
    with pytest.raises(InvalidSpec) as err:
        validate_spec(JobKind.meta_train, spec, jobs, datasets)
    assert err.value.reason == (
        "spec.workers: 3 workers cannot be placed; the cluster has 2 CPUs and 0 GPUs, so at "
        "most 2 (one per CPU): lower spec.workers or use 'auto'"
    )
    for ok in (2, 1, "auto"):
        validate_spec(JobKind.meta_train, _meta(omni, way=2, workers=ok), jobs, datasets)
    gpus = ClusterInfo(cpus=32, gpus=4, node_cpus=16, node_gpus=2)
    assert (gpus.max_workers, gpus.auto_workers) == (4, 2)
    jobs.publish_cluster(gpus, ttl_s=60)
    with pytest.raises(InvalidSpec, match=r"at most 4 \(one per GPU\)"):
        validate_spec(JobKind.meta_train, _meta(omni, way=2, workers=8), jobs, datasets)


@pytest.mark.parametrize("bad", [0, -1, 1025, "many", 2.5])
def test_workers_field_range(bad: object) -> None:
    with pytest.raises(ValueError, match="workers"):
        MetaTrainSpec.model_validate({"datasets": ["x"], "workers": bad})
