from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from service.keys import Keys
from service.redis_conn import connect
from service.settings import Settings


def test_defaults_and_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("HOST", "PORT", "DATA_DIR", "REDIS_URL", "RAY_ADDRESS", "KEY_PREFIX"):
        monkeypatch.delenv(f"ATNAS_{name}", raising=False)
    s = Settings()
    assert (s.host, s.port, s.redis_url, s.key_prefix) == ("127.0.0.1", 8000, None, "atnas")
    assert s.max_upload_bytes == 512 * 1024 * 1024 and s.evaluators is None
    monkeypatch.setenv("ATNAS_PORT", "9001")
    monkeypatch.setenv("ATNAS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ATNAS_REDIS_URL", "redis://127.0.0.1:6379/0")
    s = Settings()
    assert s.port == 9001 and s.data_dir == tmp_path and s.redis_url == "redis://127.0.0.1:6379/0"
    assert s.datasets_dir == tmp_path / "datasets" and s.artifacts_dir == tmp_path / "artifacts"


@pytest.mark.parametrize(
    "bad", [{"port": 70000}, {"key_prefix": "a b"}, {"evaluators": 0}, {"max_upload_bytes": 0}]
)
def test_invalid(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Settings.model_validate(bad)


def test_embedded_redis_is_shared_through_data_dir(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path / "d")
    a = connect(s)
    try:
        a.set("atnas-test:x", "1")
        b = connect(s)  # e.g. a worker process on the same machine
        assert b.get("atnas-test:x") == "1"
        assert s.redis_db_file.exists() or (tmp_path / "d").is_dir()
    finally:
        a.shutdown()  # type: ignore[no-untyped-call]


def test_real_redis_from_url() -> None:
    r = connect(Settings(redis_url="redis://127.0.0.1:6379/0"))
    try:
        r.ping()
    except Exception:
        pytest.skip("no Redis server at 127.0.0.1:6379")
    assert r.get(Keys("atnas-test-none").job("x")) is None
