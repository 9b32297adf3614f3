"""Progress lines that reach the terminal even under pytest's output capture."""

from __future__ import annotations

import sys
import time

_T0 = time.monotonic()


def say(msg: str) -> None:
    stream = sys.__stderr__ or sys.stderr
    stream.write(f"[kubedrill {time.monotonic() - _T0:6.1f}s] {msg}\n")
    stream.flush()
