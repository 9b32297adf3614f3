"""A tiny WSGI app for the third-party shutdown set (apps/thirdparty), served by Debian's gunicorn.

    python3 -m gunicorn --chdir /srv/thirdparty --bind 0.0.0.0:8080 app:app

Endpoints (the same as the nginx, Apache and Node servers of the set, so one probe fits all):
  /healthz   200 "ok"
  /blob.bin  3 MiB of zeros with a Content-Length, paced at 256 KiB/s (12 s): a slow download
  /stream    the same bytes with no Content-Length, so gunicorn sends them chunked (HTTP/1.1)
Query strings are ignored. The app itself has no shutdown code: how in-flight requests end is
decided by gunicorn's settings (worker class, --graceful-timeout) and the pod's grace period.
"""

import time

SIZE = 3 * 1024 * 1024
CHUNK = 16 * 1024
RATE = 256 * 1024  # bytes per second


def paced(total):
    """Yield `total` zero bytes in CHUNK pieces at RATE; the first piece at once (headers go with it).
    Each piece is due at start + bytes sent / RATE, so a busy machine delays pieces but not the end."""
    piece = b"\0" * CHUNK
    start = time.monotonic()
    sent = 0
    while sent < total:
        n = min(CHUNK, total - sent)
        yield piece[:n]
        sent += n
        if sent < total:
            time.sleep(max(0.0, start + sent / RATE - time.monotonic()))


def app(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if path == "/healthz":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
        return [b"ok\n"]
    if path == "/blob.bin":
        start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(SIZE))])
        return paced(SIZE)
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return paced(SIZE)
    start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "10")])
    return [b"not found\n"]
