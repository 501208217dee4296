#!/usr/bin/env python3
"""A client that resets its connection mid-request (tests only).

usage: sidecar_reset_client.py HOST PORT MODE AUTHORITY PATH [CERT KEY]

MODE "http1" speaks plain HTTP/1.1, "http1-tls" HTTP/1.1 over mTLS, "h2-tls"
HTTP/2 over mTLS (CERT and KEY are the client's). It sends one complete GET
for PATH, waits 0.3 s (the request is with the app by then) and closes with
SO_LINGER 0, so the server's next read fails with a reset rather than EOF.
With PATH "-" it sends nothing and resets the connection straight after the
handshake. Prints "reset".
"""
import os
import socket
import ssl
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sidecar_h2_flood import END_HEADERS, END_STREAM, HEADERS, PREFACE, SETTINGS, frame, request_block  # noqa: E402


def main():
    host, port, mode, authority, path = sys.argv[1:6]
    raw = socket.create_connection((host, int(port)), timeout=5)
    sock = raw
    if mode.endswith("-tls"):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # the server's own checks are under test, not ours
        ctx.load_cert_chain(sys.argv[6], sys.argv[7])
        ctx.set_alpn_protocols(["h2" if mode == "h2-tls" else "http/1.1"])
        sock = ctx.wrap_socket(raw)
    if path != "-":
        if mode == "h2-tls":
            sock.sendall(PREFACE + frame(SETTINGS, 0, 0) + frame(HEADERS, END_HEADERS | END_STREAM, 1,
                                                                  request_block(authority, path)))
        else:
            sock.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (path, authority)).encode())
        time.sleep(0.3)
    # (a TLS socket closes without close_notify: the reset is all the server gets)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
    print("reset")


if __name__ == "__main__":
    main()
