"""``atnas keys`` and the refusal to serve an open API outside loopback, in-process."""

from __future__ import annotations

from pathlib import Path

import pytest

from atnas_cli.main import main
from service.auth import KeyRing


@pytest.fixture(autouse=True)
def _no_keys_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ATNAS_API_KEYS", "ATNAS_API_KEYS_FILE", "ATNAS_HOST", "ATNAS_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)


def test_keys_add_prints_the_key_once_and_stores_its_hash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["keys", "add", "acme", "--data-dir", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    key = out.strip()
    assert "only now" in err and key not in err
    path = tmp_path / "api_keys"
    assert key not in path.read_text()
    assert KeyRing.load(None, path).tenant_of(key) == "acme"
    assert main(["keys", "list", "--file", str(path)]) == 0
    assert capsys.readouterr().out == "acme\n"


def test_keys_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["keys", "add", "no/slashes", "--data-dir", str(tmp_path)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("atnas: error: invalid tenant name") and err.count("\n") == 1
    with pytest.raises(SystemExit):
        main(["keys", "list", "--file", str(tmp_path / "missing")])
    assert "no keys file" in capsys.readouterr().err


def test_serve_refuses_an_open_api_outside_loopback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--host", "0.0.0.0", "--data-dir", str(tmp_path), "--no-worker"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "refusing to serve on 0.0.0.0 without API keys" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "redis.db").exists()  # refused before anything started


def test_a_setting_out_of_range_is_one_line_naming_its_variable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ATNAS_MODEL_SWITCH_INTERVAL_MS", "0")
    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--data-dir", str(tmp_path), "--no-worker"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err == (
        "atnas: error: invalid settings: ATNAS_MODEL_SWITCH_INTERVAL_MS='0': "
        "Input should be greater than 0\n"
    )
    assert not (tmp_path / "redis.db").exists()  # refused before anything started
