"""Progress lines that reach the terminal live, also while pytest captures a test's output.

pytest's default fd-level capture points file descriptor 2 at a temporary file while a test (or a
fixture) runs, so a plain write to stderr from a 5-minute cluster creation or drain shows up only
afterwards, and only if the test failed. The pytest plugin calls `keep_terminal()` at configure
time, when pytest has suspended its capture, and `say()` writes to that duplicate of the real
stderr from then on. Outside pytest (the CLI, scripts) `say()` writes to stderr.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import TextIO

_T0 = time.monotonic()
_TERMINAL: TextIO | None = None
_LOCK = threading.Lock()


def keep_terminal() -> None:
    """Keep a duplicate of file descriptor 2 as it is now (call while no capture is active)."""
    global _TERMINAL
    if _TERMINAL is not None:
        return
    try:
        _TERMINAL = os.fdopen(os.dup(2), "w", buffering=1, encoding="utf-8", errors="replace")
    except OSError:
        _TERMINAL = None


def say(msg: str) -> None:
    stream = _TERMINAL or sys.__stderr__ or sys.stderr
    with _LOCK:
        stream.write(f"[kubedrill {time.monotonic() - _T0:6.1f}s] {msg}\n")
        stream.flush()
