// A tiny Node.js HTTP server for the third-party shutdown set (apps/thirdparty), run by Debian's nodejs.
//
//   node /srv/thirdparty/server.js                    no SIGTERM handler (Node's default)
//   HANDLE_SIGTERM=1 node /srv/thirdparty/server.js   stop accepting on SIGTERM, exit 0 once the
//                                                     open responses have ended
//
// Endpoints (the same as the nginx, Apache and gunicorn servers of the set):
//   /healthz   200 "ok"
//   /blob.bin  3 MiB of zeros with a Content-Length, paced at 256 KiB/s (12 s): a slow download
//   /stream    the same bytes with no Content-Length, so Node sends them chunked (HTTP/1.1)
// Query strings are ignored.
'use strict';
const http = require('http');

const SIZE = 3 * 1024 * 1024;
const CHUNK = 16 * 1024;
const RATE = 256 * 1024; // bytes per second

// Each piece is due at start + bytes sent / RATE, so a busy machine delays pieces but not the end.
function paced(res, total) {
  const piece = Buffer.alloc(CHUNK);
  const start = Date.now();
  let sent = 0;
  const next = () => {
    if (res.destroyed) return;
    const n = Math.min(CHUNK, total - sent);
    res.write(piece.subarray(0, n));
    sent += n;
    if (sent >= total) { res.end(); return; }
    setTimeout(next, Math.max(0, start + (sent / RATE) * 1000 - Date.now()));
  };
  next();
}

const server = http.createServer((req, res) => {
  const path = req.url.split('?')[0];
  if (path === '/healthz') {
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': 3 });
    res.end('ok\n');
  } else if (path === '/blob.bin') {
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': SIZE });
    paced(res, SIZE);
  } else if (path === '/stream') {
    res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
    paced(res, SIZE);
  } else {
    res.writeHead(404, { 'Content-Type': 'text/plain', 'Content-Length': 10 });
    res.end('not found\n');
  }
});

server.listen(8080, () => console.log(`listening on :8080 (pid ${process.pid}, SIGTERM handler: ${process.env.HANDLE_SIGTERM === '1'})`));

if (process.env.HANDLE_SIGTERM === '1') {
  process.on('SIGTERM', () => {
    console.log('SIGTERM: closing the listener, waiting for open responses');
    server.close(() => {
      console.log('all connections closed: exit 0');
      process.exit(0);
    });
    // Node 18's close() waits for idle keep-alive connections too; close those as they go idle.
    server.closeIdleConnections();
    setInterval(() => server.closeIdleConnections(), 250).unref();
  });
}
