"""Peak memory and time of dataset uploads, good and hostile, through the real API (issue 7).

Each case starts a fresh API process (``uvicorn api.asgi:app``, embedded Redis, default limits),
streams its zip(s) to ``POST /v1/datasets`` over HTTP, and reads the API process's peak resident
memory (``VmHWM`` in ``/proc/<pid>/status``, Linux) when it has answered. The target: any upload
of at most 100 MB handled in at most 200 MB of API memory and 10 s.

    python benchmarks/upload_memory.py                 # every case: ~2 minutes on 2 cores,
                                                       # ~35 s once --work holds the zips
    python benchmarks/upload_memory.py pixel-bomb ...  # some cases (names as in the table)

The zips are built once in ``--work`` (default: a temporary folder; ~250 MB of disk).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import io
import os
import random
import socket
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.hostile import add_chunk_png, patch_entry, pixel_bomb_png  # noqa: E402

MiB = 1024 * 1024


def _pngs(count: int, size: int, seed: int = 0) -> list[bytes]:
    """``count`` distinct grey PNGs of ``size`` x ``size`` random pixels (they do not compress)."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        img = Image.frombytes("L", (size, size), rng.randbytes(size * size))
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        out.append(buf.getvalue())
    return out


def small_images(path: Path) -> None:
    """~100 MB of valid 96x96 images: 10,800 in 360 classes, stored (PNGs do not deflate)."""
    blobs = _pngs(64, 96)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for i in range(10_800):
            zf.writestr(
                f"images/Alphabet_{i // 600}/character{i // 30:03d}/{i:05d}.png", blobs[i % 64]
            )


def entry_limit(path: Path) -> None:
    """249,000 valid 11x11 images in 12,450 classes (~96 MB): just under the entry limit."""
    blobs = _pngs(64, 11)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(249_000):
            c = i // 20
            zf.writestr(
                f"images_background/Alphabet_{c % 50}/character{c:05d}/{i:06d}.png", blobs[i % 64]
            )


def million_entries(path: Path) -> None:
    """1,000,000 empty entries (a ~95 MB zip): 4x the entry limit. ``zipfile.ZipFile`` alone
    would keep ~0.65 KB per entry of its directory before anything could be counted."""
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(1_000_000):
            zf.writestr(f"e/{i:07d}", b"")


def million_entries_lying(path: Path) -> None:
    """The same, its end records declaring 10 entries: the walk counts for itself."""
    source = path.with_name("entries-1M.zip")
    if not source.exists():
        million_entries(source)
    data = bytearray(source.read_bytes())
    end64 = data.rfind(b"PK\x06\x06")  # the ZIP64 end record: entries on this disk, in all
    struct.pack_into("<QQ", data, end64 + 24, 10, 10)
    end = data.rfind(b"PK\x05\x06")
    struct.pack_into("<HH", data, end + 8, 10, 10)
    path.write_bytes(data)


def chunk_1gib(path: Path) -> None:
    """The issue's attack: a valid PNG with a 1 GiB ancillary chunk of zeros (a ~1 MB zip)."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("cat/1.png", _pngs(1, 8)[0])
        add_chunk_png(zf, "dog/1.png", 1024 * MiB)


def chunk_1gib_lying(path: Path) -> None:
    """The same, its directory declaring 1000 bytes for the 1 GiB image."""
    source = path.with_name("chunk-1GiB.zip")
    if not source.exists():
        chunk_1gib(source)
    path.write_bytes(patch_entry(source.read_bytes(), "dog/1.png", file_size=1000))


def pixel_bomb(path: Path) -> None:
    """A PNG of ~60 bytes declaring 100000 x 100000 pixels."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("cat/1.png", _pngs(1, 8)[0])
        zf.writestr("dog/1.png", pixel_bomb_png(100_000, 100_000))


def chunk_flood(path: Path) -> None:
    """The most work the default limits let through: 60 PNGs just under 32 MiB each (zero
    chunks), 1.87 GiB uncompressed in all, under 2 GiB; a ~2 MB zip that is accepted."""
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(60):
            add_chunk_png(zf, f"c{i % 2}/{i}.png", 32 * MiB - 200)


def max_images(path: Path) -> None:
    """Eight PNGs just under the 32 MiB limit for one image (a ~260 KB zip, accepted)."""
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(8):
            add_chunk_png(zf, f"c{i % 2}/{i}.png", 32 * MiB - 200)


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[Path], None]
    uploads: int = 1  # concurrent uploads of the same zip


CASES = [
    Case("small-images-100MB", small_images),
    Case("entry-limit-249k", entry_limit),
    Case("entries-1M", million_entries),
    Case("entries-1M-lying", million_entries_lying),
    Case("chunk-1GiB", chunk_1gib),
    Case("chunk-1GiB-lying", chunk_1gib_lying),
    Case("pixel-bomb", pixel_bomb),
    Case("chunk-flood-1.87GiB", chunk_flood),
    Case("3-at-once-32MiB-images", max_images, uploads=3),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _memory_mb(pid: int) -> tuple[float, float]:
    """(peak, current) resident memory of process ``pid`` in MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields["VmHWM"].split()[0]) / 1024, int(fields["VmRSS"].split()[0]) / 1024


class Api:
    """``uvicorn api.asgi:app`` in a subprocess with its own data folder and embedded Redis."""

    def __init__(self, data_dir: Path) -> None:
        self.port = _free_port()
        env = {**os.environ, "ATNAS_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT)}
        for key in [k for k in env if k.startswith("ATNAS_") and k != "ATNAS_DATA_DIR"]:
            del env[key]  # default limits, open service on loopback, embedded Redis
        command = [sys.executable, "-m", "uvicorn", "api.asgi:app", "--port", str(self.port)]
        self.proc = subprocess.Popen([*command, "--log-level", "warning"], cwd=ROOT, env=env)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("the API did not start")
            time.sleep(0.2)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def _upload(url: str, path: Path) -> tuple[int, str]:
    with path.open("rb") as fh, httpx.Client(timeout=600) as http:
        resp = http.post(f"{url}/v1/datasets", files={"file": (path.name, fh, "application/zip")})
    detail = resp.json().get("detail", "") if resp.status_code != 201 else "accepted"
    return resp.status_code, str(detail)


def run(case: Case, work: Path) -> dict[str, object]:
    zip_path = work / f"{case.name}.zip"
    if not zip_path.exists():
        case.build(zip_path)
    with tempfile.TemporaryDirectory(prefix="atnas-upload-bench-") as data:
        api = Api(Path(data))
        try:
            idle, _ = _memory_mb(api.proc.pid)
            t0 = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(case.uploads) as pool:
                answers = list(pool.map(lambda _: _upload(api.url, zip_path), range(case.uploads)))
            seconds = time.perf_counter() - t0
            peak, _ = _memory_mb(api.proc.pid)
        finally:
            api.close()
    status, detail = answers[0]
    return {
        "case": case.name,
        "zip_mb": zip_path.stat().st_size / 1e6,
        "status": status,
        "detail": detail,
        "seconds": seconds,
        "idle_mb": idle,
        "peak_mb": peak,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("cases", nargs="*", help="case names (default: all)")
    parser.add_argument("--work", type=Path, help="folder for the zips (kept between runs)")
    args = parser.parse_args(argv)
    chosen = [c for c in CASES if not args.cases or c.name in args.cases]
    with tempfile.TemporaryDirectory(prefix="atnas-upload-zips-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        print("| case | zip MB | status | time s | API idle MB | API peak MB |")
        print("|---|---:|---:|---:|---:|---:|")
        details = []
        for case in chosen:
            r = run(case, work)
            details.append(f"{r['case']}: {r['status']} {r['detail']}")
            print(
                f"| {r['case']} | {r['zip_mb']:.1f} | {r['status']} | {r['seconds']:.1f} "
                f"| {r['idle_mb']:.0f} | {r['peak_mb']:.0f} |",
                flush=True,
            )
        print("\n" + "\n".join(details))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
