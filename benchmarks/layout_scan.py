"""Time of the dataset layout scan (service.layout.scan_layout) against the number of class folders.

The scan runs on every upload; it must stay linear in the zip's entries.

    python benchmarks/layout_scan.py 12500 100000
"""

from __future__ import annotations

import sys
import time

from service.layout import scan_layout


def main(argv: list[str]) -> int:
    for n in [int(a) for a in argv] or [12_500, 100_000]:
        names = [f"group{i % 50}/class{i}/1.png" for i in range(n)]
        t0 = time.perf_counter()
        layout = scan_layout(names)
        secs = time.perf_counter() - t0
        print(f"{n:>8} folders: {len(layout.classes)} classes in {secs:.2f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
