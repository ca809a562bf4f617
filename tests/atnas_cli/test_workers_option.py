"""``atnas submit meta_train --workers N`` over real HTTP, and what a bad N gets."""

from __future__ import annotations

import io

import pytest

from atnas_cli.main import main
from service.schemas import ClusterInfo, MetaTrainSpec
from tests.api.conftest import LiveServer
from tests.conftest import Zips


def test_submit_sets_workers_and_a_cluster_too_small_is_a_422(
    server: LiveServer, zips: type[Zips], capsys: pytest.CaptureFixture[str]
) -> None:
    datasets = server.services.datasets
    ds = datasets.create_from_upload(io.BytesIO(zips.classes({"a": 2, "b": 2})), "d.zip", 10**6)
    spec = f'{{"datasets": ["{ds.id}"], "way": 2}}'
    url = ["--url", server.url]
    assert main(["submit", "meta_train", spec, "--workers", "2", *url]) == 0
    job = server.client.job(capsys.readouterr().out.split()[0])
    assert isinstance(job.spec, MetaTrainSpec) and job.spec.workers == 2
    assert main(["submit", "meta_train", spec, *url]) == 0
    job = server.client.job(capsys.readouterr().out.split()[0])
    assert isinstance(job.spec, MetaTrainSpec) and job.spec.workers == "auto"

    server.services.jobs.publish_cluster(
        ClusterInfo(cpus=2, gpus=0, node_cpus=2, node_gpus=0), ttl_s=60
    )
    with pytest.raises(SystemExit) as exit_:
        main(["submit", "meta_train", spec, "--workers", "3", *url])
    assert exit_.value.code == 2
    assert capsys.readouterr().err == (
        "atnas: error: HTTP 422: spec.workers: 3 workers cannot be placed; the cluster has 2 "
        "CPUs and 0 GPUs, so at most 2 (one per CPU): lower spec.workers or use 'auto'\n"
    )
    for bad, message in (
        ("two", "--workers must be a number or 'auto', not 'two'"),
        ("0", "workers must be 'auto' or in 1..1024"),
    ):
        with pytest.raises(SystemExit):
            main(["submit", "meta_train", spec, "--workers", bad, *url])
        assert message in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["submit", "search", "{}", "--workers", "2", *url])
    assert "--workers applies to meta_train jobs only" in capsys.readouterr().err
