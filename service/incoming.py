"""The folder that uploads stream into before they become datasets: ``<datasets>/.incoming``.

An upload in flight is a ``upload-*.part`` file there (:class:`service.datasets.UploadSink`).
Every failure path of a live process removes it: a client that disconnects mid-body, a
malformed multipart body, a limit exceeded, a zip refused, Redis failing on commit. Only a
process that dies mid-upload (killed, out of memory, power cut) leaves one behind;
:func:`sweep_stale_parts` removes those, and the API calls it when its app is built.

Example:
    >>> sweep_stale_parts(Path(".atnas/datasets"))  # doctest: +SKIP
    [PosixPath('.atnas/datasets/.incoming/upload-3fj2k1.part')]
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

log = logging.getLogger(__name__)

INCOMING = ".incoming"
# A live upload writes its file at least every few seconds (then it is checked within ~10 s);
# an hour-old one belongs to no live request, even one of another API process on this folder.
STALE_AFTER_S = 3600.0


def sweep_stale_parts(
    datasets_dir: Path, older_than_s: float = STALE_AFTER_S, now: float | None = None
) -> list[Path]:
    """Removes ``.part`` files in ``datasets_dir/.incoming`` unmodified for ``older_than_s``.

    Returns the paths removed. A file that vanishes meanwhile (another process swept it, or
    its upload finished) is skipped.
    """
    folder = datasets_dir / INCOMING
    if not folder.is_dir():
        return []
    cutoff = (time.time() if now is None else now) - older_than_s
    removed = []
    for path in folder.glob("*.part"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed.append(path)
        except FileNotFoundError:
            continue
    if removed:
        log.info("removed %d stale upload file(s) from %s", len(removed), folder)
    return removed
