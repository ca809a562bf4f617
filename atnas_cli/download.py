"""Resumable downloads checked against a pinned sha256 (``atnas datasets fetch``).

A download goes to ``<target>.part`` and becomes ``<target>`` only once its sha256 matches: a
half-written file is never taken for a dataset. An interrupted download resumes from the bytes
already in ``.part`` with an HTTP ``Range`` request (a server that ignores ``Range`` sends the
whole file again, which is also handled); a ``.part`` that ends up with the wrong checksum is
removed, so the next try starts clean.

Example:
    >>> fetch("https://example.org/a.zip", Path("a.zip"), sha256="…")  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO

from atnas_cli.output import CliError

CHUNK = 1 << 16
TIMEOUT_S = 30.0
ATTEMPTS = 3  # a connection cut mid-way is retried from where it stopped

Progress = Callable[[int, int | None], None]


def sha256_of(path: Path) -> str:
    """The hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch(url: str, target: Path, sha256: str, progress: Progress | None = None) -> Path:
    """Downloads ``url`` to ``target`` unless a file with the right sha256 is already there.

    Raises ``CliError`` (one line) when the network fails after retries, the server answers an
    error, or the bytes do not match ``sha256``.
    """
    if target.is_file() and sha256_of(target) == sha256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    for attempt in range(1, ATTEMPTS + 1):
        try:
            _download(url, part, progress)
            break
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
            if isinstance(exc, urllib.error.HTTPError) or attempt == ATTEMPTS:
                raise CliError(f"cannot download {url}: {_reason(exc)}") from None
            time.sleep(0.5 * attempt)
    digest = sha256_of(part)
    if digest != sha256:
        part.unlink(missing_ok=True)
        raise CliError(
            f"{url} does not match its pinned sha256 (got {digest[:12]}…, "
            f"want {sha256[:12]}…); the partial file was removed, try again"
        )
    part.replace(target)
    return target


def _download(url: str, part: Path, progress: Progress | None) -> None:
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "atnas"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # the .part already holds every byte
            return
        raise
    with response:
        if have and response.status != 206:  # Range ignored: the whole file comes again
            have = 0
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        with part.open("ab" if have else "wb") as out:
            _copy(response, out, have, total, progress)


def _copy(
    src: IO[bytes], out: IO[bytes], done: int, total: int | None, progress: Progress | None
) -> None:
    while block := src.read(CHUNK):
        out.write(block)
        done += len(block)
        if progress is not None:
            progress(done, total)
    if total is not None and done < total:
        raise ConnectionError(f"connection closed after {done} of {total} bytes")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return f"{exc.reason} (offline?)"
    return str(exc) or type(exc).__name__


def bar(label: str) -> Progress:
    """A progress printer on stderr: a redrawn bar on a terminal, a line per 10% otherwise."""
    tty = sys.stderr.isatty()
    shown = [-1]

    def show(done: int, total: int | None) -> None:
        mb = done / 1e6
        if total:
            pct = int(100 * done / total)
            if tty:
                filled = pct * 30 // 100
                line = f"\r{label} [{'#' * filled}{'.' * (30 - filled)}] {pct:3d}% {mb:.1f} MB"
                print(line, end="" if done < total else "\n", file=sys.stderr, flush=True)
            elif pct // 10 != shown[0]:
                shown[0] = pct // 10
                print(f"{label}: {pct}% ({mb:.1f} MB)", file=sys.stderr, flush=True)
        elif tty:
            print(f"\r{label} {mb:.1f} MB", end="", file=sys.stderr, flush=True)

    return show
