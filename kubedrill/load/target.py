"""A tiny in-process HTTP target on 127.0.0.1 that mimics the sample app's / and /slow.

Why: the load tooling (LoadRunner, SlowProbe) must be testable and benchmarkable without Docker
or a cluster. It answers `/` with an X-Pod header, `/slow?seconds=N` with a chunked body whose
first chunk comes at once and whose last chunk and terminator come after N seconds (like
apps/sample; completion is judged by the framing), and `/status/<code>` with that
code. `fail()` makes it refuse service (close connections without answering) to produce failures.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qs, urlparse


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, delayed ACKs add ~40 ms to each.
    disable_nagle_algorithm = True
    server: "_Server"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        if self.server.failing.is_set():
            self.close_connection = True
            self.connection.close()
            return
        url = urlparse(self.path)
        if url.path == "/slow":
            seconds = float(parse_qs(url.query).get("seconds", ["1"])[0])
            self.send_response(200)
            self.send_header("X-Pod", self.server.pod)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self._chunk(f"started pod={self.server.pod}\n".encode())
            time.sleep(min(seconds, 300))
            self._chunk(f"done pod={self.server.pod}\n".encode())
            self.wfile.write(b"0\r\n\r\n")
            return
        code = int(url.path.rsplit("/", 1)[1]) if url.path.startswith("/status/") else 200
        body = f'{{"pod":"{self.server.pod}"}}\n'.encode()
        self.send_response(code)
        self.send_header("X-Pod", self.server.pod)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    pod = "local-target"
    failing: threading.Event


class LocalTarget:
    """`with LocalTarget() as t: t.url` -> "http://127.0.0.1:<free port>"."""

    def __init__(self, pod: str = "local-target") -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.pod = pod
        self._server.failing = threading.Event()
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="kd-local-target", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def fail(self, on: bool = True) -> None:
        """While on, every request gets its connection closed without an answer."""
        (self._server.failing.set if on else self._server.failing.clear)()

    def __enter__(self) -> "LocalTarget":
        self._thread.start()
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
