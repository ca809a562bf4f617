from __future__ import annotations

import stat
from pathlib import Path

import pytest

from service.auth import (
    AuthConfigError,
    KeyRing,
    add_key,
    check_exposure,
    digest,
    is_loopback,
)
from service.settings import Settings


def test_parse_maps_keys_to_tenants() -> None:
    ring = KeyRing.parse(" acme:k1 , globex:k2,acme:k3 ")
    assert ring.tenants == ["acme", "globex"]
    assert [ring.tenant_of(k) for k in ("k1", "k2", "k3", "k4", "")] == [
        "acme",
        "globex",
        "acme",
        None,
        None,
    ]
    assert not ring.open and KeyRing.parse(None).open and KeyRing.parse(" , ").open


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("acme", "entry 1 is not 'tenant:key'"),
        ("acme:k1,globex:", "entry 2 is not 'tenant:key'"),
        ("bad tenant:k1", "invalid tenant name"),
        ("a:same,b:same", "the same API key is given to two tenants"),
    ],
)
def test_parse_refuses_malformed_entries_without_echoing_keys(value: str, reason: str) -> None:
    with pytest.raises(AuthConfigError) as err:
        KeyRing.parse(value)
    assert reason in err.value.reason
    assert "same" not in err.value.reason.replace("the same API", "")


def test_keys_file_holds_only_hashes_and_is_private(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "api_keys"
    k1, k2 = add_key(path, "acme"), add_key(path, "globex")
    assert k1 != k2 and k1.startswith("atnas_") and len(k1) > 40
    text = path.read_text()
    assert k1 not in text and k2 not in text and f"acme:{digest(k1)}" in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    ring = KeyRing.load("ops:plain", path)
    assert (ring.tenant_of(k1), ring.tenant_of(k2), ring.tenant_of("plain")) == (
        "acme",
        "globex",
        "ops",
    )
    with pytest.raises(AuthConfigError, match="invalid tenant name"):
        add_key(path, "../etc")


def test_keys_file_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text("# comment\n\nacme:" + "0" * 64 + "\nacme:not-a-digest\n")
    with pytest.raises(AuthConfigError, match="line 4 is not"):
        KeyRing.load(None, path)
    with pytest.raises(AuthConfigError, match="cannot read ATNAS_API_KEYS_FILE"):
        KeyRing.load(None, tmp_path / "missing")


def test_from_settings_reads_the_default_file_only_when_present(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert KeyRing.from_settings(settings).open
    key = add_key(settings.keys_file, "acme")
    assert KeyRing.from_settings(settings).tenant_of(key) == "acme"
    missing = Settings(data_dir=tmp_path, api_keys_file=tmp_path / "nope")
    with pytest.raises(AuthConfigError):
        KeyRing.from_settings(missing)


def test_settings_never_show_keys() -> None:
    settings = Settings(api_keys="acme:supersecret")
    assert "supersecret" not in repr(settings) and "supersecret" not in str(settings)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.5", False),
        ("example.com", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_an_open_service_is_refused_outside_loopback() -> None:
    check_exposure(KeyRing(), "127.0.0.1")
    check_exposure(KeyRing.parse("acme:k"), "0.0.0.0")
    with pytest.raises(AuthConfigError, match=r"refusing to serve on 0\.0\.0\.0 without API keys"):
        check_exposure(KeyRing(), "0.0.0.0")
