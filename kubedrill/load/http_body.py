"""Did an HTTP response arrive whole? Judged from HTTP's own framing, never from app cooperation.

A request in flight when its pod got SIGTERM completed only if the server sent a success status
and the whole body: HTTP/1.1 says where a body ends (RFC 9112, section 6.3), and a server that
drops the connection early leaves that end unreached.

    content-length  complete when exactly Content-Length bytes arrived
    chunked         complete when the last-chunk (0-size) terminator arrived
    close           the body ends when the connection closes, so an early close looks the same
                    as the real end: complete only if the caller knows the expected size
                    (`expected_size`), else UNKNOWN -- kubedrill will not guess

Status 2xx and 3xx count as served; anything else is a failed request whatever its body.
"""

from __future__ import annotations

import http.client
import socket
from dataclasses import dataclass
from typing import Literal

from kubedrill.record import Outcome

Framing = Literal["content-length", "chunked", "close", "none"]
READ_BLOCK = 64 * 1024


@dataclass(frozen=True)
class BodyResult:
    outcome: Outcome
    status: int
    framing: Framing
    received: int  # body bytes read
    declared: int | None  # Content-Length, when the server sent one
    detail: str  # why it is not "ok", or a short description when it is


def read_body(resp: http.client.HTTPResponse, expected_size: int | None = None) -> BodyResult:
    """Read the whole body of `resp` (bounded by its socket timeout) and judge its completeness."""
    status = resp.status
    declared = resp.length  # http.client counts it down as the body is read: take it first
    framing: Framing = ("none" if status in (204, 304) or resp._method == "HEAD"  # type: ignore[attr-defined]
                        else "chunked" if resp.chunked else "content-length" if declared is not None else "close")
    received = 0
    cut = ""
    try:
        while True:
            block = resp.read(READ_BLOCK)
            if not block:
                break
            received += len(block)
    except http.client.IncompleteRead as exc:
        received += len(exc.partial)
        cut = (f"the connection closed after {received} of {declared} body bytes" if framing == "content-length"
               else f"the chunked body ended without its terminating chunk after {received} bytes")
    except (TimeoutError, socket.timeout):
        return BodyResult("unknown", status, framing, received, declared,
                          f"no end of body within the socket timeout after {received} bytes")
    except (OSError, http.client.HTTPException) as exc:
        cut = f"{type(exc).__name__} after {received} body bytes: {str(exc)[:120]}"
    if not cut and framing == "content-length" and declared is not None and received < declared:
        cut = f"the connection closed after {received} of {declared} body bytes"
    if not 200 <= status < 400:
        return BodyResult("fail", status, framing, received, declared, f"HTTP {status}")
    if cut:
        return BodyResult("fail", status, framing, received, declared, cut)
    if framing == "close":
        if expected_size is None:
            return BodyResult("unknown", status, framing, received, declared,
                              f"close-delimited body of {received} bytes: an early close cannot be told from the end "
                              "(give the expected size in the workload spec: slow_size)")
        if received != expected_size:
            return BodyResult("fail", status, framing, received, declared,
                              f"close-delimited body ended after {received} of the expected {expected_size} bytes")
    return BodyResult("ok", status, framing, received, declared, f"{received} bytes, {framing}")
