"""A dependency-free scatter plot as SVG text: accuracy against MACs (log scale), one labelled
point per method, with its 95% CI as a vertical bar. Used by benchmarks/algorithm.py for the
accuracy-vs-cost figure (matplotlib is not a dependency of atnas).

    >>> svg = scatter("5w1s", [("conv4_64", 10.2e6, 0.91, 0.01)])
    >>> svg.startswith("<svg") and "conv4_64" in svg
    True
"""

from __future__ import annotations

import math
from html import escape

W, H, PAD_L, PAD_R, PAD_T, PAD_B = 640, 400, 64, 150, 36, 48


def scatter(title: str, points: list[tuple[str, float, float, float]]) -> str:
    """SVG of ``(label, macs, accuracy, ci95)`` points; accuracy in [0, 1]."""
    xs = [math.log10(p[1]) for p in points]
    lo_y = min(p[2] - p[3] for p in points)
    hi_y = max(p[2] + p[3] for p in points)
    x0, x1 = math.floor(min(xs) * 2) / 2 - 0.1, math.ceil(max(xs) * 2) / 2 + 0.1
    y0, y1 = max(0.0, lo_y - 0.02), min(1.0, hi_y + 0.02)

    def px(lx: float) -> float:
        return PAD_L + (lx - x0) / (x1 - x0) * (W - PAD_L - PAD_R)

    def py(a: float) -> float:
        return PAD_T + (y1 - a) / (y1 - y0) * (H - PAD_T - PAD_B)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
        f'font-family="sans-serif" font-size="11">',
        f'<rect width="{W}" height="{H}" fill="white"/>',
        f'<text x="{W / 2}" y="20" text-anchor="middle" font-size="14">{escape(title)}</text>',
        f'<line x1="{PAD_L}" y1="{H - PAD_B}" x2="{W - PAD_R}" y2="{H - PAD_B}" stroke="black"/>',
        f'<line x1="{PAD_L}" y1="{PAD_T}" x2="{PAD_L}" y2="{H - PAD_B}" stroke="black"/>',
        f'<text x="{(PAD_L + W - PAD_R) / 2}" y="{H - 12}" text-anchor="middle">'
        "MACs (log scale)</text>",
        f'<text x="16" y="{(PAD_T + H - PAD_B) / 2}" text-anchor="middle" '
        f'transform="rotate(-90 16 {(PAD_T + H - PAD_B) / 2})">query accuracy %</text>',
    ]
    tick = math.ceil(x0 * 4) / 4
    while tick <= x1:
        x = px(tick)
        y: float = H - PAD_B
        out.append(f'<line x1="{x}" y1="{y}" x2="{x}" y2="{y + 4}" stroke="black"/>')
        out.append(
            f'<text x="{x}" y="{H - PAD_B + 16}" text-anchor="middle">{10**tick / 1e6:.2g}M</text>'
        )
        tick += 0.25
    step = 0.01 if y1 - y0 <= 0.12 else 0.05
    ty = math.ceil(y0 / step) * step
    while ty <= y1 + 1e-9:
        y = py(ty)
        out.append(f'<line x1="{PAD_L - 4}" y1="{y}" x2="{PAD_L}" y2="{y}" stroke="black"/>')
        out.append(f'<text x="{PAD_L - 6}" y="{y + 4}" text-anchor="end">{100 * ty:.0f}</text>')
        ty += step
    for label, macs, acc, ci in points:
        x, y = px(math.log10(macs)), py(acc)
        color = "#1f77b4" if label.startswith("conv4") else "#d62728"
        out.append(
            f'<line x1="{x}" y1="{py(acc - ci)}" x2="{x}" y2="{py(acc + ci)}" stroke="{color}"/>'
        )
        out.append(f'<circle cx="{x}" cy="{y}" r="4" fill="{color}"/>')
        out.append(f'<text x="{x + 7}" y="{y + 4}" fill="{color}">{escape(label)}</text>')
    out.append("</svg>")
    return "\n".join(out)
