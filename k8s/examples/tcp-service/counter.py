#!/usr/bin/env python3
"""counter: the client of the TCP example. It increments a Redis counter every few seconds and
serves its own health over HTTP.

It speaks RESP, Redis' protocol, over one plain TCP connection to REDIS_ADDR (host:port), and
knows nothing of the mesh: in a meshed pod the interception rules hand that connection to the
sidecar, which carries it over mTLS to Redis' sidecar.

HTTP on 0.0.0.0:8080 (PORT): GET /healthz is 200 while the process runs; GET /ready is 200 once
Redis has answered the last INCR; GET / returns the last count.
"""

import http.server
import os
import socket
import sys
import threading
import time

REDIS_ADDR = os.environ.get("REDIS_ADDR", "redis:6379")
KEY = os.environ.get("COUNTER_KEY", "visits")
EVERY = float(os.environ.get("EVERY_SECONDS", "5"))
PORT = int(os.environ.get("PORT", "8080"))
TIMEOUT = 5.0

state = {"count": None, "ok": False}


def command(*words):
    """One RESP command: an array of bulk strings."""
    out = [b"*%d\r\n" % len(words)]
    for w in words:
        w = w.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(w), w))
    return b"".join(out)


def read_line(sock, buf):
    while b"\r\n" not in buf:
        data = sock.recv(4096)
        if not data:
            raise ConnectionError("Redis closed the connection")
        buf += data
    line, rest = buf.split(b"\r\n", 1)
    return line, rest


def counter_loop():
    host, port = REDIS_ADDR.rsplit(":", 1)
    sock, buf = None, b""
    while True:
        try:
            if sock is None:
                sock = socket.create_connection((host, int(port)), timeout=TIMEOUT)
                buf = b""
            sock.sendall(command("INCR", KEY))
            line, buf = read_line(sock, buf)
            if not line.startswith(b":"):
                raise ValueError("unexpected reply %r" % line[:100])
            state["count"], state["ok"] = int(line[1:]), True
            print("%s = %d" % (KEY, state["count"]), flush=True)
        except (OSError, ValueError) as err:
            state["ok"] = False
            print("redis %s: %s" % (REDIS_ADDR, err), file=sys.stderr, flush=True)
            if sock is not None:
                sock.close()
            sock = None
        time.sleep(EVERY)


class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/healthz":
            code, body = 200, "ok\n"
        elif self.path == "/ready":
            code, body = (200, "ok\n") if state["ok"] else (503, "redis not reached yet\n")
        elif self.path == "/":
            code, body = 200, "%s = %s\n" % (KEY, state["count"])
        else:
            code, body = 404, "not found\n"
        data = body.encode()
        self.send_response(code)
        self.send_header("content-type", "text/plain")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass  # kubelet probes every few seconds: keep the log for the counter


def main():
    threading.Thread(target=counter_loop, daemon=True).start()
    http.server.ThreadingHTTPServer(("0.0.0.0", PORT), Health).serve_forever()


if __name__ == "__main__":
    main()
