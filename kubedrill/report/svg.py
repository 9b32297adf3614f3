"""Just enough SVG to draw the report's plots in pure Python.

report.html must open offline on a release manager's laptop, so plots are inline SVG strings
built here rather than images from matplotlib or a JS charting library from a CDN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

OK = "#2da44e"
FAIL = "#cf222e"
UNKNOWN = "#bf8700"
NEUTRAL = "#57606a"
BAND = "#0969da"
GRID = "#d0d7de"
INK = "#24292f"
FONT = "font-family='system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif' font-size='11'"


def fmt(v: float) -> str:
    """Short number for labels: 12, 1.5, 0.25, 1.2k."""
    if abs(v) >= 10000:
        return f"{v / 1000:.0f}k"
    if abs(v) >= 1000:
        return f"{v / 1000:.1f}k"
    if v == int(v):
        return str(int(v))
    return f"{v:.2f}".rstrip("0").rstrip(".")


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """Round tick values covering [lo, hi] (1-2-5 steps), so axes read naturally."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / max(1, n)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks = []
    v = start
    while v <= hi + step * 1e-9:
        if v >= lo - step * 1e-9:
            ticks.append(round(v, 10))
        v += step
    return ticks


@dataclass
class Frame:
    """A plot area inside an SVG canvas, mapping data coordinates to pixels."""

    width: int
    height: int
    x0: float
    x1: float
    y0: float
    y1: float
    left: int = 56
    right: int = 16
    top: int = 22
    bottom: int = 34

    def x(self, v: float) -> float:
        span = (self.x1 - self.x0) or 1.0
        return round(self.left + (v - self.x0) / span * (self.width - self.left - self.right), 2)

    def y(self, v: float) -> float:
        span = (self.y1 - self.y0) or 1.0
        return round(self.height - self.bottom - (v - self.y0) / span * (self.height - self.top - self.bottom), 2)

    @property
    def plot_left(self) -> int:
        return self.left

    @property
    def plot_right(self) -> int:
        return self.width - self.right

    @property
    def plot_top(self) -> int:
        return self.top

    @property
    def plot_bottom(self) -> int:
        return self.height - self.bottom


def open_svg(width: int, height: int, title: str) -> str:
    return (f"<svg xmlns='http://www.w3.org/2000/svg' class='plot' width='{width}' height='{height}' "
            f"viewBox='0 0 {width} {height}' role='img' aria-label='{escape(title, quote=True)}' {FONT}>"
            f"<title>{escape(title)}</title>")


def close_svg() -> str:
    return "</svg>"


def rect(x: float, y: float, w: float, h: float, fill: str, opacity: float = 1.0, tip: str = "") -> str:
    t = f"<title>{escape(tip)}</title>" if tip else ""
    op = f" fill-opacity='{opacity}'" if opacity != 1.0 else ""
    return (f"<rect x='{x:.2f}' y='{y:.2f}' width='{max(w, 0):.2f}' height='{max(h, 0):.2f}' "
            f"fill='{fill}'{op}>{t}</rect>")


def line(x1: float, y1: float, x2: float, y2: float, stroke: str = INK, width: float = 1.0, dash: str = "") -> str:
    d = f" stroke-dasharray='{dash}'" if dash else ""
    return f"<line x1='{x1:.2f}' y1='{y1:.2f}' x2='{x2:.2f}' y2='{y2:.2f}' stroke='{stroke}' stroke-width='{width}'{d}/>"


def text(x: float, y: float, s: str, anchor: str = "start", fill: str = INK, weight: str = "normal",
         size: int | None = None) -> str:
    sz = f" font-size='{size}'" if size else ""
    w = f" font-weight='{weight}'" if weight != "normal" else ""
    return f"<text x='{x:.2f}' y='{y:.2f}' text-anchor='{anchor}' fill='{fill}'{w}{sz}>{escape(s)}</text>"


def x_axis(f: Frame, label: str, n: int = 8) -> str:
    """Bottom axis with gridlines and a label (e.g. 'seconds since load start')."""
    parts = [line(f.plot_left, f.plot_bottom, f.plot_right, f.plot_bottom, NEUTRAL)]
    for v in nice_ticks(f.x0, f.x1, n):
        px = f.x(v)
        parts.append(line(px, f.plot_bottom, px, f.plot_bottom + 4, NEUTRAL))
        parts.append(text(px, f.plot_bottom + 15, fmt(v), "middle", NEUTRAL))
    parts.append(text((f.plot_left + f.plot_right) / 2, f.height - 4, label, "middle", NEUTRAL))
    return "".join(parts)


def y_axis(f: Frame, label: str, n: int = 4) -> str:
    """Left axis with light horizontal gridlines."""
    parts = [line(f.plot_left, f.plot_top, f.plot_left, f.plot_bottom, NEUTRAL)]
    for v in nice_ticks(f.y0, f.y1, n):
        py = f.y(v)
        parts.append(line(f.plot_left, py, f.plot_right, py, GRID, 0.6))
        parts.append(text(f.plot_left - 5, py + 4, fmt(v), "end", NEUTRAL))
    cy = (f.plot_top + f.plot_bottom) / 2
    parts.append(f"<text transform='translate(12,{cy:.1f}) rotate(-90)' text-anchor='middle' "
                 f"fill='{NEUTRAL}'>{escape(label)}</text>")
    return "".join(parts)


def legend_width(items: list[tuple[str, str]]) -> float:
    return sum(22 + 6.5 * len(name) for name, _ in items)


def legend(x: float, y: float, items: list[tuple[str, str]]) -> str:
    """A row of coloured squares with names (x is the left edge; see legend_width)."""
    parts = []
    for name, colour in items:
        parts.append(rect(x, y - 9, 10, 10, colour))
        parts.append(text(x + 14, y, name))
        x += 22 + 6.5 * len(name)
    return "".join(parts)
