#!/usr/bin/env python3
"""A small HTTP/1.1 app for the sidecar's integration tests: it echoes what it received.

usage: sidecar_test_app.py PORT [ADDRESS]   (ADDRESS defaults to 127.0.0.1)

Every request gets 200 with a JSON body: method, path, the x-forwarded-client-cert
values it saw (a list, so a duplicate shows), the Host header, the x-hop header (to
see whether a proxy dropped a header its Connection header named) and the body, read as it
comes (content-length or chunked): its length, its SHA-256 and whether it was chunked.
/slow?ms=N waits N milliseconds before answering (requests in flight during a drain);
any path ending in /bytes?n=N answers N bytes of "x" instead. Framing cases for the
sidecar's app client: /chunked?n=N (N bytes of "y", chunked), /close?n=N (N bytes, no
length, the end is the close), /cut?n=N (announces N bytes, sends half, closes),
/garbage (not HTTP), /nocontent (204). The JSON also carries the client's port
(peer_port: equal ports mean a reused connection) and the x-forwarded-* and expect headers.
"""
import hashlib
import json
import sys
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the sidecar's pool expects

    def _read_body(self):
        """Reads the request body as it comes (content-length or chunked); returns (length, sha256, chunked)."""
        digest, total = hashlib.sha256(), 0
        if "chunked" in (self.headers.get("transfer-encoding") or "").lower():
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return total, digest.hexdigest(), True
                left = size
                while left > 0:
                    piece = self.rfile.read(min(left, 65536))
                    if not piece:
                        raise ConnectionError("body cut short")
                    digest.update(piece)
                    left -= len(piece)
                total += size
                self.rfile.readline()  # the CRLF after the chunk
        left = int(self.headers.get("content-length") or 0)
        while left > 0:
            piece = self.rfile.read(min(left, 65536))
            if not piece:
                raise ConnectionError("body cut short")
            digest.update(piece)
            total += len(piece)
            left -= len(piece)
        return total, digest.hexdigest(), False

    def _answer(self):
        body_length, body_sha256, body_chunked = self._read_body()
        url = urllib.parse.urlsplit(self.path)
        if url.path.endswith("/bytes"):
            n = int(urllib.parse.parse_qs(url.query).get("n", ["0"])[0])
            self.send_response(200)
            self.send_header("content-type", "application/octet-stream")
            self.send_header("content-length", str(n))
            self.end_headers()
            chunk = b"x" * 65536
            while n > 0 and self.command != "HEAD":
                self.wfile.write(chunk[:min(n, len(chunk))])
                n -= min(n, len(chunk))
            return
        n = int(urllib.parse.parse_qs(url.query).get("n", ["0"])[0])
        if url.path == "/chunked":
            self.send_response(200)
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            left = n
            while left > 0:
                size = min(left, 7919)  # odd chunk sizes
                self.wfile.write(b"%x\r\n" % size + b"y" * size + b"\r\n")
                left -= size
            self.wfile.write(b"0\r\n\r\n")
            return
        if url.path in ("/close", "/cut"):
            self.send_response(200)
            if url.path == "/cut":
                self.send_header("content-length", str(n))
            self.send_header("connection", "close")
            self.end_headers()
            self.wfile.write(b"z" * (n if url.path == "/close" else n // 2))
            self.wfile.flush()
            self.close_connection = True
            return
        if url.path == "/garbage":
            self.wfile.write(b"this is not HTTP\r\n\r\n")
            self.close_connection = True
            return
        if url.path == "/nocontent":
            self.send_response(204)
            self.end_headers()
            return
        if url.path == "/slow":
            ms = int(urllib.parse.parse_qs(url.query).get("ms", ["500"])[0])
            time.sleep(ms / 1000.0)
        out = json.dumps({
            "method": self.command,
            "path": self.path,
            "xfcc": self.headers.get_all("x-forwarded-client-cert") or [],
            "host": self.headers.get("host"),
            "x_hop": self.headers.get("x-hop"),
            "peer_port": self.client_address[1],
            "x_forwarded_proto": self.headers.get("x-forwarded-proto"),
            "x_forwarded_for": self.headers.get("x-forwarded-for"),
            "expect": self.headers.get("expect"),
            "body_length": body_length,
            "body_sha256": body_sha256,
            "body_chunked": body_chunked,
        }).encode() + b"\n"
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _answer

    def log_message(self, fmt, *args):
        pass


class Server(ThreadingHTTPServer):
    request_queue_size = 1024  # the sidecar opens many pooled connections at once under load
    daemon_threads = True


def main():
    server = Server((sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1", int(sys.argv[1])), Handler)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
