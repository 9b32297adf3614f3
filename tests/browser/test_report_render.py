"""report.html opened from disk in real headless chromium with networking disabled.

Proves what a gate reader relies on: the file renders offline (no CDN, no fonts, no scripts to
fetch), the verdict is at the top in its colour, the gate table and the SVG plots are in the DOM.
Skipped, with the reason, when no chromium is installed (`apt-get install -y chromium`).
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import time
import zlib
from pathlib import Path

import pytest

from kubedrill.report.demo import demo_results
from kubedrill.report.writer import write_reports

WIDTH, HEIGHT = 1280, 2000
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--disable-default-apps", "--mute-audio",
         # Every host name fails to resolve: any external asset would be missing, not fetched.
         "--host-resolver-rules=MAP * ~NOTFOUND"]
FAIL_RED = (0xCF, 0x22, 0x2E)
OK_GREEN = (0x2D, 0xA4, 0x4E)


def find_chromium() -> str | None:
    for name in (os.environ.get("KUBEDRILL_CHROMIUM"), "chromium", "chromium-browser", "google-chrome",
                 "google-chrome-stable"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium not found on PATH (install it with `apt-get install -y chromium`, or set KUBEDRILL_CHROMIUM)")


def chromium(tmp_path: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / f"profile-{time.monotonic_ns()}"
    profile.mkdir()
    assert CHROMIUM is not None
    try:
        return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"chromium did not finish within {timeout:.0f}s: {exc.cmd}\nstderr: {exc.stderr!r}")


def decode_png(data: bytes) -> tuple[int, int, list[bytes], int]:
    """Minimal PNG decoder (8-bit RGB/RGBA, no interlace): width, height, raw rows, bytes per pixel."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, b""
    width = height = bpp = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and colour in (2, 6) and interlace == 0, f"unsupported PNG: {depth=} {colour=}"
            bpp = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows: list[bytes] = []
    prev = bytearray(stride)
    i = 0
    for _ in range(height):
        ftype, line = raw[i], bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        if ftype == 1:
            for x in range(bpp, stride):
                line[x] = (line[x] + line[x - bpp]) & 255
        elif ftype == 2:
            line = bytearray((a + b) & 255 for a, b in zip(line, prev))
        elif ftype == 3:
            for x in range(stride):
                left = line[x - bpp] if x >= bpp else 0
                line[x] = (line[x] + ((left + prev[x]) >> 1)) & 255
        elif ftype == 4:
            for x in range(stride):
                a = line[x - bpp] if x >= bpp else 0
                b, c = prev[x], (prev[x - bpp] if x >= bpp else 0)
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, rows, bpp


def pixels(rows: list[bytes], bpp: int, y0: int, y1: int) -> set[tuple[int, int, int]]:
    out = set()
    for row in rows[y0:y1]:
        for x in range(0, len(row), bpp * 2):  # every other pixel is plenty
            out.add((row[x], row[x + 1], row[x + 2]))
    return out


def near(colours: set[tuple[int, int, int]], target: tuple[int, int, int], tol: int = 12) -> bool:
    return any(all(abs(c[i] - target[i]) <= tol for i in range(3)) for c in colours)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A failing demo run written the way the plugin writes it."""
    out = tmp_path_factory.mktemp("reports")
    latest = write_reports(demo_results(failing=True), out, time.time() - 400, 1,
                           ["kind cluster kd-1a2b3c (three-node) created in 41 s"], ["suites/"],
                           meta={"etcd_version": "v3.6.5"}, snapshot=False)
    return latest / "report.html"


def test_screenshot_is_a_real_page_with_the_verdict_on_top(report: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    proc = chromium(tmp_path, f"--screenshot={shot}", f"--window-size={WIDTH},{HEIGHT}", report.as_uri())
    assert shot.is_file() and shot.stat().st_size > 10_000, f"no screenshot; chromium stderr:\n{proc.stderr[-3000:]}"
    width, height, rows, bpp = decode_png(shot.read_bytes())
    assert (width, height) == (WIDTH, HEIGHT)
    everything = pixels(rows, bpp, 0, height)
    assert len(everything) > 200, f"page looks blank: only {len(everything)} colours"
    # The FAIL badge is in the first screenful, in the fail colour.
    assert near(pixels(rows, bpp, 0, 200), FAIL_RED), "no fail-red in the banner area"
    # The availability timeline (green bars) is drawn somewhere on the first 2000 px.
    assert near(everything, OK_GREEN), "no ok-green plot bars"
    keep = os.environ.get("KUBEDRILL_KEEP_SCREENSHOT")
    if keep:
        shutil.copy(shot, keep)


def test_dom_has_gate_table_and_svg_plots(report: Path, tmp_path: Path) -> None:
    proc = chromium(tmp_path, "--dump-dom", report.as_uri())
    dom = proc.stdout
    assert "<main>" in dom, f"no DOM dumped; stderr:\n{proc.stderr[-3000:]}"
    assert "Release gate: FAIL" in dom
    table = re.search(r'<table class="gates" id="gate-table">(.*?)</table>', dom, re.S)
    assert table, "gate table missing from the rendered DOM"
    rows = re.findall(r"<tr class=\"r-(\w+)\"", table.group(1))
    assert rows[:2] == ["fail", "fail"] and "pass" in rows  # failures first
    assert "availability: " in table.group(1) and "graceful_shutdown: " in table.group(1)
    svgs = re.findall(r"<svg\b.*?</svg>", dom, re.S)
    assert len(svgs) >= 4
    assert all(svg.count("<rect") >= 2 for svg in svgs), "an svg plot without any drawn marks"


def test_nothing_external_is_requested(report: Path) -> None:
    page = report.read_text()
    assert "<script" not in page.lower() and "url(" not in page
    assert not re.search(r"""(src|href)\s*=\s*['"]?(https?:)?//""", page)
