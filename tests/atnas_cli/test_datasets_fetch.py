"""``atnas datasets fetch``: a real HTTP server on loopback serves the bytes (no network).

The server speaks ``Range`` (206 Partial Content) and can be told to cut the first connection
after a number of bytes, so resuming is tested for real; a second one ignores ``Range``.
"""

from __future__ import annotations

import hashlib
import http.server
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from atnas_cli import datasets
from atnas_cli.download import fetch
from atnas_cli.main import main
from atnas_cli.output import CliError

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Served:
    """What the test server hands out, and what it saw."""

    body: bytes = b""
    cut_first_after: int | None = None  # close the first response after this many bytes
    honour_range: bool = True
    ranges: list[str | None] = field(default_factory=list)


def _handler(served: Served) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            if self.path.endswith("/missing.zip"):
                self.send_error(404)
                return
            range_ = self.headers.get("Range")
            served.ranges.append(range_)
            start = 0
            if range_ and served.honour_range:
                start = int(range_.removeprefix("bytes=").split("-")[0])
                if start >= len(served.body):
                    self.send_error(416)
                    return
                self.send_response(206)
                end = len(served.body) - 1
                self.send_header("Content-Range", f"bytes {start}-{end}/{len(served.body)}")
            else:
                self.send_response(200)
            payload = served.body[start:]
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if served.cut_first_after is not None:
                payload, served.cut_first_after = payload[: served.cut_first_after], None
            self.wfile.write(payload)

    return Handler


@pytest.fixture
def http_server() -> Iterator[tuple[str, Served]]:
    served = Served()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(served))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", served
    server.shutdown()
    server.server_close()


def _blob(n: int = 300_000) -> bytes:
    return os.urandom(n)


def test_downloads_checks_and_reuses(http_server: tuple[str, Served], tmp_path: Path) -> None:
    url, served = http_server
    served.body = _blob()
    digest = hashlib.sha256(served.body).hexdigest()
    seen: list[tuple[int, int | None]] = []
    target = tmp_path / "d" / "a.zip"
    assert fetch(f"{url}/a.zip", target, digest, lambda d, t: seen.append((d, t))) == target
    assert target.read_bytes() == served.body
    assert seen[-1] == (len(served.body), len(served.body))
    assert not target.with_name("a.zip.part").exists()
    fetch(f"{url}/a.zip", target, digest)  # intact already: nothing requested
    assert len(served.ranges) == 1


def test_resumes_a_cut_download_with_range(http_server: tuple[str, Served], tmp_path: Path) -> None:
    url, served = http_server
    served.body, served.cut_first_after = _blob(), 100_000
    digest = hashlib.sha256(served.body).hexdigest()
    target = fetch(f"{url}/a.zip", tmp_path / "a.zip", digest)
    assert target.read_bytes() == served.body
    assert served.ranges == [None, "bytes=100000-"]


def test_resumes_from_an_earlier_part_file(http_server: tuple[str, Served], tmp_path: Path) -> None:
    url, served = http_server
    served.body = _blob()
    (tmp_path / "a.zip.part").write_bytes(served.body[:12_345])
    target = fetch(f"{url}/a.zip", tmp_path / "a.zip", hashlib.sha256(served.body).hexdigest())
    assert target.read_bytes() == served.body
    assert served.ranges == ["bytes=12345-"]


def test_a_server_ignoring_range_sends_it_all_again(
    http_server: tuple[str, Served], tmp_path: Path
) -> None:
    url, served = http_server
    served.body, served.honour_range = _blob(), False
    (tmp_path / "a.zip.part").write_bytes(served.body[:5_000])
    target = fetch(f"{url}/a.zip", tmp_path / "a.zip", hashlib.sha256(served.body).hexdigest())
    assert target.read_bytes() == served.body


def test_wrong_bytes_are_refused_and_removed(
    http_server: tuple[str, Served], tmp_path: Path
) -> None:
    url, served = http_server
    served.body = _blob()
    with pytest.raises(CliError, match="does not match its pinned sha256"):
        fetch(f"{url}/a.zip", tmp_path / "a.zip", "0" * 64)
    assert list(tmp_path.iterdir()) == []


def test_http_errors_and_offline_are_one_line(
    http_server: tuple[str, Served], tmp_path: Path
) -> None:
    url, _ = http_server
    with pytest.raises(CliError, match=r"HTTP 404"):
        fetch(f"{url}/missing.zip", tmp_path / "a.zip", "0" * 64)
    dead = "http://127.0.0.1:9/a.zip"  # the discard port: nothing listens
    with pytest.raises(CliError, match=r"cannot download .*offline\?"):
        fetch(dead, tmp_path / "a.zip", "0" * 64)


def _shared_omniglot() -> Path:
    env = os.environ.get("ATNAS_DATASETS")
    root = Path(env) if env else REPO.parent / "shared" / "datasets"
    return root / "omniglot" / "images_background.zip"


def test_cli_fetches_omniglot_into_the_cache(
    http_server: tuple[str, Served],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The real zip, served locally, lands in $ATNAS_CACHE under its pinned sha256."""
    source = _shared_omniglot()
    if not source.is_file():
        pytest.skip(f"{source} is not here: the pinned sha256 needs the real file")
    url, served = http_server
    served.body, served.cut_first_after = source.read_bytes(), 3_000_000
    monkeypatch.setenv("ATNAS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("ATNAS_DATASETS", str(tmp_path / "nothing-here"))
    assert datasets.locate("omniglot") is None
    assert main(["datasets", "fetch", "omniglot", "--url", f"{url}/omniglot.zip"]) == 0
    out, err = capsys.readouterr()
    want = tmp_path / "cache" / "datasets" / "omniglot" / "images_background.zip"
    assert out.strip() == str(want)
    assert "omniglot/images_background.zip: 100%" in err  # the progress lines (no TTY here)
    assert want.read_bytes() == served.body
    assert datasets.locate("omniglot") == want
    assert main(["datasets", "list"]) == 0
    assert str(want) in capsys.readouterr().out


def test_cli_wrong_mirror_is_a_one_line_error(
    http_server: tuple[str, Served],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, served = http_server
    served.body = _blob()
    monkeypatch.setenv("ATNAS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("ATNAS_OMNIGLOT_URL", f"{url}/omniglot.zip")
    with pytest.raises(SystemExit) as exit_:
        main(["datasets", "fetch", "omniglot", "--quiet"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("atnas: error: ") and err.count("\n") == 1
    assert "does not match its pinned sha256" in err
    assert not any((tmp_path / "cache").rglob("*.zip*"))
