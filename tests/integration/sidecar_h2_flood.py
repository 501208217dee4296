#!/usr/bin/env python3
"""A hostile HTTP/2 client for the sidecar's stream-rate limit (tests only).

usage: sidecar_h2_flood.py HOST PORT CERT KEY MODE COUNT PATH

MODE "reset" opens COUNT streams and cancels each at once (RST_STREAM CANCEL,
the 2023 rapid-reset pattern); MODE "open" opens COUNT complete requests as
fast as it can, reading (and discarding) the answers between batches. Prints "closed" when the server closed the connection within
5 seconds, "open" otherwise, and the number of frames it managed to send.
"""
import socket
import ssl
import struct
import sys
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
HEADERS, RST_STREAM, SETTINGS, GOAWAY = 0x1, 0x3, 0x4, 0x7
END_STREAM, END_HEADERS = 0x1, 0x4
CANCEL = 0x8


def frame(ftype, flags, stream_id, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream_id) + payload


def literal(index, value):
    """HPACK literal header field without indexing, name from the static table, no Huffman."""
    value = value.encode()
    assert index < 15 and len(value) < 127
    return bytes([index, len(value)]) + value


def request_block(authority, path):
    # :method GET (static 2), :scheme https (static 7), :path, :authority
    return b"\x82\x87" + literal(4, path) + literal(1, authority)


def drain(sock):
    """Reads whatever the server has sent so far, so that its writes never block."""
    sock.settimeout(0.05)
    try:
        while sock.recv(65536):
            pass
    except (socket.timeout, ssl.SSLWantReadError, BlockingIOError):
        pass
    sock.settimeout(5)


def main():
    host, port, cert, key, mode, count, path = sys.argv[1:8]
    port, count = int(port), int(count)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the client under test is hostile; the server's checks are what matter
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols(["h2"])
    raw = socket.create_connection((host, port), timeout=5)
    sock = ctx.wrap_socket(raw)
    assert sock.selected_alpn_protocol() == "h2", sock.selected_alpn_protocol()
    sock.sendall(PREFACE + frame(SETTINGS, 0, 0))
    block = request_block("%s:%d" % (host, port), path)
    sent = 0
    closed = False
    try:
        batch = []
        for i in range(count):
            stream_id = 2 * i + 1
            if mode == "reset":
                batch.append(frame(HEADERS, END_HEADERS | END_STREAM, stream_id, block))
                batch.append(frame(RST_STREAM, 0, stream_id, struct.pack(">I", CANCEL)))
            else:
                batch.append(frame(HEADERS, END_HEADERS | END_STREAM, stream_id, block))
            if len(batch) >= 100 or i == count - 1:
                sock.sendall(b"".join(batch))
                sent += len(batch)
                batch = []
                if mode == "open":
                    drain(sock)
    except (BrokenPipeError, ConnectionResetError, ssl.SSLError, socket.timeout, OSError):
        closed = True
    deadline = time.time() + 5
    while not closed and time.time() < deadline:
        try:
            sock.settimeout(max(0.1, deadline - time.time()))
            data = sock.recv(65536)
            if not data:
                closed = True
        except socket.timeout:
            break
        except (ConnectionResetError, ssl.SSLError, OSError):
            closed = True
    print("closed" if closed else "open", sent)


if __name__ == "__main__":
    main()
