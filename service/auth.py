"""API keys and tenants: who a bearer token belongs to.

Keys come from ``ATNAS_API_KEYS`` (``"tenant:key,tenant2:key2"``) and from the file in
``ATNAS_API_KEYS_FILE`` (one ``tenant:<sha256 of the key>`` per line, written by
``atnas keys add``). Only sha256 digests are kept in memory; a key is never logged.
Without any key the service is *open*: every request acts as tenant :data:`OPEN_TENANT`, and
the API must then be bound to a loopback address (:func:`check_exposure`).

Example:
    >>> ring = KeyRing.parse("acme:s3cret")
    >>> ring.tenant_of("s3cret"), ring.tenant_of("wrong")
    ('acme', None)
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import secrets
from collections.abc import Iterable
from pathlib import Path

from service.errors import ServiceError
from service.settings import Settings

# The tenant of every record in an open service (and of records made before tenancy existed).
OPEN_TENANT = "public"
TENANT_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
_DIGEST = re.compile(r"^[0-9a-f]{64}$")


class AuthConfigError(ServiceError):
    """The API key settings are malformed, or an open service would be exposed."""


def digest(key: str) -> str:
    """The sha256 hex digest under which a key is stored and looked up."""
    return hashlib.sha256(key.encode()).hexdigest()


def check_tenant(name: str) -> str:
    """``name`` if it is a valid tenant name, else :class:`AuthConfigError`."""
    if not TENANT_PATTERN.match(name):
        raise AuthConfigError(
            f"invalid tenant name {name[:70]!r}: 1-64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return name


class KeyRing:
    """Maps key digests to tenants; empty means the service is open."""

    def __init__(self, digests: dict[str, str] | None = None) -> None:
        self._tenant_of = dict(digests or {})

    @classmethod
    def parse(cls, api_keys: str | None, lines: Iterable[str] = ()) -> KeyRing:
        """From ``ATNAS_API_KEYS``'s value and the lines of a keys file.

        Raises :class:`AuthConfigError` naming the malformed entry (never echoing a key).
        """
        digests: dict[str, str] = {}
        for i, entry in enumerate((api_keys or "").split(","), 1):
            entry = entry.strip()
            if not entry:
                continue
            tenant, sep, key = entry.partition(":")
            if not sep or not key.strip():
                raise AuthConfigError(f"ATNAS_API_KEYS entry {i} is not 'tenant:key'")
            _add(digests, check_tenant(tenant.strip()), digest(key.strip()))
        for n, line in enumerate(lines, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            tenant, sep, hexdigest = line.partition(":")
            if not sep or not _DIGEST.match(hexdigest.strip()):
                raise AuthConfigError(f"keys file line {n} is not 'tenant:<sha256 hex>'")
            _add(digests, check_tenant(tenant.strip()), hexdigest.strip())
        return cls(digests)

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyRing:
        """From ``ATNAS_API_KEYS`` and the keys file (``ATNAS_API_KEYS_FILE``, which must then
        exist, else ``<data_dir>/api_keys`` when it exists)."""
        keys_file = settings.keys_file
        if settings.api_keys_file is None and not keys_file.exists():
            return cls.load(settings.api_keys, None)
        return cls.load(settings.api_keys, keys_file)

    @classmethod
    def load(cls, api_keys: str | None, keys_file: Path | None) -> KeyRing:
        """From a ``tenant:key,...`` string and a keys file (which must exist if given)."""
        lines: list[str] = []
        if keys_file is not None:
            try:
                lines = keys_file.read_text().splitlines()
            except OSError as exc:
                raise AuthConfigError(
                    f"cannot read ATNAS_API_KEYS_FILE {keys_file}: {exc.strerror}"
                ) from None
        return cls.parse(api_keys, lines)

    @property
    def open(self) -> bool:
        """True when no key is configured: no authentication at all."""
        return not self._tenant_of

    @property
    def tenants(self) -> list[str]:
        """Tenant names, sorted."""
        return sorted(set(self._tenant_of.values()))

    def tenant_of(self, key: str) -> str | None:
        """The tenant of a presented key, or None when the key is unknown."""
        wanted = digest(key)
        for known, tenant in self._tenant_of.items():  # constant time per comparison
            if secrets.compare_digest(known, wanted):
                return tenant
        return None


def _add(digests: dict[str, str], tenant: str, hexdigest: str) -> None:
    if digests.get(hexdigest, tenant) != tenant:
        raise AuthConfigError("the same API key is given to two tenants")
    digests[hexdigest] = tenant


def add_key(keys_file: Path, tenant: str) -> str:
    """Makes a new random key for ``tenant``, appends its digest to ``keys_file`` (created
    with mode 0600) and returns the key: the only time it is ever shown."""
    check_tenant(tenant)
    key = f"atnas_{secrets.token_urlsafe(32)}"
    keys_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(keys_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a") as f:
        f.write(f"{tenant}:{digest(key)}\n")
    return key


def is_loopback(host: str) -> bool:
    """True for a loopback bind address (``127.0.0.0/8``, ``::1``, ``localhost``)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(ring: KeyRing, host: str) -> None:
    """Refuses an open service (no keys) bound anywhere but a loopback address."""
    if ring.open and not is_loopback(host):
        raise AuthConfigError(
            f"refusing to serve on {host} without API keys: anyone who can reach it could "
            "read and run everything. Set ATNAS_API_KEYS='tenant:key' or ATNAS_API_KEYS_FILE "
            "(`atnas keys add TENANT` makes one), or bind to 127.0.0.1"
        )
