"""``atnas keys add TENANT``: make an API key, store its hash, print it once."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from atnas_cli.output import CliError
from service.auth import KeyRing, add_key
from service.errors import ServiceError
from service.settings import Settings


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Registers ``keys add`` and ``keys list``."""
    p = sub.add_parser("keys", help="manage API keys (tenants)")
    keys_sub = p.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    add = keys_sub.add_parser(
        "add",
        help="make a new API key for TENANT (printed once; only its hash is stored)",
        description="Appends the key's sha256 to the keys file (ATNAS_API_KEYS_FILE, default "
        "<data dir>/api_keys) and prints the key. Restart `atnas serve` to load it. Clients "
        "send it as 'Authorization: Bearer <key>' (the CLI reads ATNAS_API_KEY).",
    )
    add.add_argument("tenant", help="tenant name: 1-64 letters, digits, '_', '.', '-'")
    _file_option(add)
    add.set_defaults(func=cmd_add)
    ls = keys_sub.add_parser("list", help="list the tenants that have keys (never the keys)")
    _file_option(ls)
    ls.set_defaults(func=cmd_list)


def _file_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--file", type=Path, default=None, help="keys file (default: see above)")
    p.add_argument(
        "--data-dir", type=Path, default=None, help="data directory (env ATNAS_DATA_DIR)"
    )


def _keys_file(args: argparse.Namespace) -> Path:
    if args.file is not None:
        return Path(args.file)
    settings = Settings(**({"data_dir": args.data_dir} if args.data_dir else {}))
    return settings.keys_file


def cmd_add(args: argparse.Namespace) -> int:
    """Prints the new key on stdout (alone, so that scripts can capture it)."""
    path = _keys_file(args)
    try:
        key = add_key(path, args.tenant)
    except ServiceError as exc:
        raise CliError(exc.reason) from None
    except OSError as exc:
        raise CliError(f"cannot write the keys file {path}: {exc.strerror}") from None
    print(
        f"added a key for tenant {args.tenant!r} to {path}; it is shown only now:", file=sys.stderr
    )
    print(key)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    """Prints one tenant per line."""
    path = _keys_file(args)
    if not path.exists():
        raise CliError(f"no keys file at {path}; `atnas keys add TENANT` makes one")
    try:
        ring = KeyRing.load(None, path)
    except ServiceError as exc:
        raise CliError(exc.reason) from None
    for tenant in ring.tenants:
        print(tenant)
    return 0
