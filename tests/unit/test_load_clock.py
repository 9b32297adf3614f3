"""Why LoadRunner uses the subprocess's time.monotonic() as is: CLOCK_MONOTONIC is system-wide on
Linux, so a reading taken in another process falls between two readings taken here around it."""

from __future__ import annotations

import subprocess
import sys
import time


def test_monotonic_clock_is_shared_between_processes() -> None:
    before = time.monotonic()
    out = subprocess.run([sys.executable, "-c", "import time; print(repr(time.monotonic()))"],
                         capture_output=True, text=True, timeout=30, check=True)
    after = time.monotonic()
    child = float(out.stdout)
    assert before <= child <= after, f"child monotonic {child} not within [{before}, {after}]"
