"""In-flight completion from HTTP framing, against a real socket server on loopback that ends its
responses every way a dying server can."""

from __future__ import annotations

import http.client
import socket
import threading
from typing import Iterator

import pytest

from kubedrill.load.http_body import read_body

BODY = b"x" * 5000

RESPONSES = {
    "cl-whole": b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + BODY,
    "cl-cut": b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + BODY[:1200],
    "chunked-whole": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1388\r\n" + BODY + b"\r\n0\r\n\r\n",
    "chunked-cut": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1388\r\n" + BODY + b"\r\n",
    "close": b"HTTP/1.0 200 OK\r\n\r\n" + BODY,
    "close-cut": b"HTTP/1.0 200 OK\r\n\r\n" + BODY[:700],
    "error": b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy",
    "redirect": b"HTTP/1.1 302 Found\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n",
}


@pytest.fixture(scope="module")
def server() -> Iterator[int]:
    """Answers each connection with the canned response named by the request path, then closes."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    srv.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            with conn:
                req = conn.recv(4096).decode()
                name = req.split(" ")[1].lstrip("/") if " " in req else ""
                conn.sendall(RESPONSES.get(name, RESPONSES["error"]))

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield srv.getsockname()[1]
    stop.set()
    t.join(2)
    srv.close()


def fetch(port: int, name: str, expected: int | None = None):  # type: ignore[no-untyped-def]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/" + name)
        return read_body(conn.getresponse(), expected)
    finally:
        conn.close()


@pytest.mark.parametrize("name, expected, outcome, phrase", [
    ("cl-whole", None, "ok", "5000 bytes, content-length"),
    ("cl-cut", None, "fail", "closed after 1200 of 5000 body bytes"),
    ("chunked-whole", None, "ok", "5000 bytes, chunked"),
    ("chunked-cut", None, "fail", "without its terminating chunk"),
    ("close", None, "unknown", "cannot be told from the end"),
    ("close", 5000, "ok", "5000 bytes, close"),
    ("close-cut", 5000, "fail", "ended after 700 of the expected 5000 bytes"),
    ("error", None, "fail", "HTTP 503"),
    ("redirect", None, "ok", "0 bytes"),
])
def test_completion_follows_http_framing(server: int, name: str, expected: int | None, outcome: str,
                                         phrase: str) -> None:
    got = fetch(server, name, expected)
    assert got.outcome == outcome and phrase in got.detail, got
