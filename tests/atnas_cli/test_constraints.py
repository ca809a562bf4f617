"""Cost bounds (``--max-macs``, ``--max-params``, ``--max-latency-ms``) on search and submit."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from atnas_cli.main import build_parser, main
from service.schemas import SearchSpec
from tests.api.conftest import LiveServer
from tests.conftest import Zips


def _bounds(*argv: str) -> dict[str, object] | None:
    from atnas_cli.constraints import constraints_of

    args = build_parser().parse_args(["search", "t.zip", "--supernet", "s", "--out", "o", *argv])
    return constraints_of(args)


def test_bounds_are_parsed() -> None:
    assert _bounds() is None
    assert _bounds("--max-macs", "1000000") == {"max_macs": 1_000_000}
    assert _bounds("--max-macs", "1e6", "--max-params", "50_000") == {
        "max_macs": 1_000_000,
        "max_params": 50_000,
    }
    assert _bounds("--max-latency-ms", "2.5") == {"max_latency_ms": 2.5}
    assert isinstance(_bounds("--max-macs", "7")["max_macs"], int)  # type: ignore[index]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--max-macs", "0"], "--max-macs: expected a positive whole number, got '0'"),
        (["--max-macs", "1.5"], "--max-macs: expected a positive whole number, got '1.5'"),
        (["--max-params", "many"], "--max-params: expected a positive whole number, got 'many'"),
        (["--max-latency-ms", "-1"], "--max-latency-ms: expected a positive number, got '-1'"),
        (["--max-latency-ms", "inf"], "--max-latency-ms: expected a positive number, got 'inf'"),
        (["--max-latency-ms", "nan"], "--max-latency-ms: expected a positive number, got 'nan'"),
    ],
)
def test_a_bad_bound_is_one_line_exit_2(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Checked before anything is read: the task and supernet need not exist.
    local = ["search", str(tmp_path / "t.zip"), "--supernet", str(tmp_path / "s.pt")]
    remote = ["submit", "search", "{}", "--url", "http://127.0.0.1:9"]
    for command in ([*local, "--out", str(tmp_path / "o"), *argv], [*remote, *argv]):
        with pytest.raises(SystemExit) as exit_:
            main(command)
        assert exit_.value.code == 2
        assert capsys.readouterr().err == f"atnas: error: {message}\n"


def test_bounds_are_for_search_jobs_only(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["submit", "meta_train", "{}", "--max-macs", "5", "--url", "http://127.0.0.1:9"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err == (
        "atnas: error: --max-macs, --max-params and --max-latency-ms apply to search jobs only\n"
    )


def test_submit_search_with_bounds(
    server: LiveServer, zips: type[Zips], capsys: pytest.CaptureFixture[str]
) -> None:
    datasets, jobs = server.services.datasets, server.services.jobs
    ds = datasets.create_from_upload(io.BytesIO(zips.classes({"a": 2, "b": 2})), "d.zip", 10**6)
    task = datasets.create_from_upload(io.BytesIO(zips.task({"x": 1, "y": 1})), "t.zip", 10**6)
    net = server.client.submit("meta_train", {"datasets": [ds.id], "way": 2})
    jobs.start(net.id, "w")
    jobs.succeed(net.id, {"cost_floor": {"macs": {"8": 500}, "params": {"8": 100}}})
    spec = (
        f'{{"supernet": "{net.id}", "dataset": "{task.id}", "constraints": {{"max_params": 900}}}}'
    )
    url = ["--url", server.url]

    assert main(["submit", "search", spec, "--max-macs", "516", *url]) == 0
    job_id = capsys.readouterr().out.split()[0]
    got = server.client.job(job_id).spec
    assert isinstance(got, SearchSpec) and got.constraints is not None
    assert got.constraints.model_dump(exclude_none=True) == {"max_macs": 516, "max_params": 900}

    with pytest.raises(SystemExit) as exit_:
        main(["submit", "search", spec, "--max-macs", "515", *url])
    assert exit_.value.code == 2
    assert capsys.readouterr().err == (
        "atnas: error: HTTP 422: spec.constraints.max_macs: 515 cannot be met; the smallest net "
        "of this supernet's space costs 516 MACs for 2 classes\n"
    )
