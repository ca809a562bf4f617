"""``atnas datasets fetch NAME``: public datasets downloaded once into a cache folder.

The cache is ``$ATNAS_CACHE`` (default ``~/.cache/atnas``); a dataset lands in
``<cache>/datasets/<name>/<file>``, checked against the sha256 pinned here. Where a copy already
exists beside the project (``$ATNAS_DATASETS/<name>/<file>``, or ``../shared/datasets/...``),
:func:`locate` finds it first and nothing is downloaded.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

from atnas_cli.download import bar, fetch
from atnas_cli.output import CliError


@dataclass(frozen=True)
class Source:
    """A downloadable dataset: where it comes from and what its bytes must hash to."""

    name: str
    file: str
    url: str
    sha256: str
    size: int
    about: str


CATALOG: dict[str, Source] = {
    "omniglot": Source(
        name="omniglot",
        file="images_background.zip",
        # The authors' release (Lake, Salakhutdinov, Tenenbaum 2015; MIT licence).
        url="https://github.com/brendenlake/omniglot/raw/master/python/images_background.zip",
        sha256="f0b84e5344bc0da0be8f887d6f410545e1ce5d34023761a609cda37b74cd9bbc",
        size=8_545_058,
        about="Omniglot background set: 30 alphabets, 964 characters, 19,280 images",
    ),
}

URL_ENV = "ATNAS_{}_URL"  # e.g. ATNAS_OMNIGLOT_URL: a mirror (the sha256 still applies)


def cache_dir() -> Path:
    """``$ATNAS_CACHE``, else ``~/.cache/atnas``."""
    base = os.environ.get("ATNAS_CACHE")
    return Path(base) if base else Path.home() / ".cache" / "atnas"


def cached_path(source: Source) -> Path:
    """Where ``atnas datasets fetch`` keeps ``source``."""
    return cache_dir() / "datasets" / source.name / source.file


def local_copies(source: Source) -> list[Path]:
    """Places a copy may already be, first match wins: ATNAS_DATASETS, ../shared, the cache."""
    base = os.environ.get("ATNAS_DATASETS")
    root = Path(base) if base else Path.cwd().parent / "shared" / "datasets"
    return [root / source.name / source.file, cached_path(source)]


def locate(name: str) -> Path | None:
    """An existing local copy of dataset ``name``, or None."""
    return next((p for p in local_copies(CATALOG[name]) if p.is_file()), None)


def download(name: str, url: str | None = None, quiet: bool = False) -> Path:
    """Downloads dataset ``name`` into the cache (a no-op when it is there and intact)."""
    source = CATALOG[name]
    url = url or os.environ.get(URL_ENV.format(name.upper())) or source.url
    progress = None if quiet else bar(f"{source.name}/{source.file}")
    try:
        return fetch(url, cached_path(source), source.sha256, progress)
    except CliError as exc:
        env, path = URL_ENV.format(name.upper()), cached_path(source)
        raise CliError(f"{exc}; set {env}=<mirror>, or put {source.file} at {path}") from None


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Registers ``datasets fetch`` and ``datasets list``."""
    p = sub.add_parser("datasets", help="public datasets: list them, fetch one into the cache")
    inner = p.add_subparsers(dest="datasets_command", required=True, metavar="ACTION")
    fetch_p = inner.add_parser(
        "fetch",
        help="download a dataset into $ATNAS_CACHE (default ~/.cache/atnas), checked by sha256",
    )
    fetch_p.add_argument("name", choices=sorted(CATALOG))
    fetch_p.add_argument("--url", default=None, help="a mirror (the pinned sha256 still applies)")
    fetch_p.add_argument("--quiet", action="store_true", help="no progress bar")
    fetch_p.set_defaults(func=cmd_fetch)
    list_p = inner.add_parser("list", help="the datasets `fetch` knows, and where they are")
    list_p.set_defaults(func=cmd_list)


def cmd_fetch(args: argparse.Namespace) -> int:
    """Prints the path of the fetched file."""
    print(download(args.name, args.url, args.quiet))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    """One line per known dataset: name, size, where a copy is (or 'not fetched')."""
    for name, source in sorted(CATALOG.items()):
        where = locate(name)
        print(f"{name}\t{source.size / 1e6:.1f} MB\t{where or 'not fetched'}\t{source.about}")
    return 0
