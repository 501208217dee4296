#!/usr/bin/python3
"""Hostile and counted request heads for the sidecar's header limits (tests only; Debian's python3-hpack).

usage: sidecar_hostile_headers.py MODE ARGS...
  app PORT
      an HTTP/1.1 app that accepts up to 2000 header fields and answers
      {"x_count": fields named x-h*, "big": length of x-big}
  amplify HOST PORT CERT KEY CONNS BLOCKS PID
      HPACK amplification over mTLS HTTP/2: on CONNS connections at once, BLOCKS
      header blocks each of HEADERS + 3 CONTINUATIONs (64 KB) that insert one
      4,000-byte field into the dynamic table and then name it again with one-byte
      indexes (some 260 MB decoded per block). Prints one line per connection, the
      answers in order ("431", "rst=CODE", "goaway=CODE", "closed" or "open"), then
      "rss_growth_kb=N": the most PID's VmRSS grew while it ran.
  unfinished HOST PORT CERT KEY CONNS SECONDS
      on CONNS connections a header block of some 40 KB (within the limits) that
      does not end: three more CONTINUATIONs a second apart, then one whose bytes
      come 100 a second. Prints per connection "closed after S goaway=CODE" or
      "open after S".
  trickle HOST PORT CERT KEY HOSTHEADER SECONDS FINISH
      an HTTP/1.1 request head sent one byte every 2 s; FINISH > 0 ends the head
      after that many seconds. Prints "STATUS-LINE after S" (the answer, and when it
      came), then "closed after S" or "open after S".
  h1req HOST PORT CERT KEY HOSTHEADER NFIELDS BIGBYTES
  h2req HOST PORT CERT KEY AUTHORITY NFIELDS BIGBYTES
      one request with NFIELDS header fields in all (HTTP/1.1: Host and Connection
      among them; HTTP/2: pseudo-header fields not counted) of which one is x-big
      with BIGBYTES bytes when BIGBYTES > 0. Prints "STATUS BODY" on one line.
CERT "-" means plain TCP (h2c with prior knowledge for HTTP/2).
"""
import http.client
import json
import socket
import ssl
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import hpack

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, CONTINUATION = 0x0, 0x1, 0x3, 0x4, 0x6, 0x7, 0x9
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY = 0x1, 0x1, 0x4, 0x8, 0x20
FRAME_MAX = 16384


def frame(ftype, flags, stream_id, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream_id) + payload


def hpack_int(value, prefix_bits, first):
    """RFC 7541 5.1 integer with first's high bits kept."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = [first | limit]
    value -= limit
    while value >= 128:
        out.append(0x80 | (value % 128))
        value //= 128
    out.append(value)
    return bytes(out)


def literal(index, value, first=0x00):
    """A literal field (without indexing) whose name is static table entry index; no Huffman."""
    value = value.encode() if isinstance(value, str) else value
    return hpack_int(index, 4, first) + hpack_int(len(value), 7, 0) + value


def literal_new(name, value, first=0x00, prefix=4):
    """A literal field with a new name (first 0x40 = with incremental indexing, prefix 6)."""
    name = name.encode()
    value = value.encode() if isinstance(value, str) else value
    return hpack_int(0, prefix, first) + hpack_int(len(name), 7, 0) + name + hpack_int(len(value), 7, 0) + value


def connect(host, port, cert, key, alpn, timeout=10):
    raw = socket.create_connection((host, int(port)), timeout=timeout)
    if cert == "-":
        return raw
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the client is the hostile side; the server's checks are under test
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols([alpn])
    sock = ctx.wrap_socket(raw)
    assert sock.selected_alpn_protocol() == alpn, sock.selected_alpn_protocol()
    return sock


class H2Reader:
    """Reads the server's frames; answers its SETTINGS and PINGs."""

    def __init__(self, sock):
        self.sock, self.buf, self.closed = sock, b"", False

    def frame(self, timeout):
        """The next frame (type, flags, stream, payload), or None on timeout or close (self.closed)."""
        deadline = time.monotonic() + timeout
        while len(self.buf) < 9 or len(self.buf) < 9 + int.from_bytes(self.buf[:3], "big"):
            left = deadline - time.monotonic()
            if left <= 0 or self.closed:
                return None
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except (socket.timeout, ssl.SSLWantReadError):
                return None
            except (ConnectionResetError, BrokenPipeError, ssl.SSLError, OSError):
                data = b""
            if not data:
                self.closed = True
                return None
            self.buf += data
        length = int.from_bytes(self.buf[:3], "big")
        ftype, flags = self.buf[3], self.buf[4]
        stream = struct.unpack(">I", self.buf[5:9])[0] & 0x7FFFFFFF
        payload, self.buf = self.buf[9:9 + length], self.buf[9 + length:]
        try:
            if ftype == SETTINGS and not flags & ACK:
                self.sock.sendall(frame(SETTINGS, ACK, 0))
            elif ftype == PING and not flags & ACK:
                self.sock.sendall(frame(PING, ACK, 0, payload))
        except OSError:
            pass
        return ftype, flags, stream, payload


def header_payload(flags, payload):
    if flags & PADDED:
        payload = payload[1:len(payload) - payload[0]]
    if flags & PRIORITY:
        payload = payload[5:]
    return payload


def send_frames(sock, frames):
    try:
        sock.sendall(b"".join(frames))
        return True
    except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
        return False


def block_frames(stream_id, block, flags):
    """HEADERS then CONTINUATIONs carrying block; END_HEADERS on the last."""
    parts = [block[i:i + FRAME_MAX] for i in range(0, len(block), FRAME_MAX)] or [b""]
    out = []
    for i, part in enumerate(parts):
        f = (END_HEADERS if i == len(parts) - 1 else 0) | (flags if i == 0 else 0)
        out.append(frame(HEADERS if i == 0 else CONTINUATION, f, stream_id, part))
    return out


def read_answer(reader, decoder, stream_id, timeout=10):
    """Reads until stream_id's answer: "STATUS" (and its body), "rst=CODE", "goaway=CODE" or "closed"/"open"."""
    status, body = None, b""
    deadline = time.monotonic() + timeout
    while True:
        f = reader.frame(max(0.0, deadline - time.monotonic()))
        if f is None:
            return ("closed" if reader.closed else "open"), body
        ftype, flags, stream, payload = f
        if ftype == GOAWAY:
            return "goaway=%d" % struct.unpack(">I", payload[4:8])[0], body
        if stream != stream_id:
            if ftype == HEADERS:
                decoder.decode(header_payload(flags, payload))  # keep the dynamic table in step
            continue
        if ftype == RST_STREAM:
            return "rst=%d" % struct.unpack(">I", payload)[0], body
        if ftype == HEADERS:
            for name, value in decoder.decode(header_payload(flags, payload)):
                if name == ":status":
                    status = value
        elif ftype == DATA:
            body += payload
        if flags & END_STREAM:
            return status, body


def h2_start(host, port, cert, key):
    """A connection past the SETTINGS exchange: no ACK of ours may fall inside a header block later."""
    sock = connect(host, port, cert, key, "h2")
    sock.sendall(PREFACE + frame(SETTINGS, 0, 0))
    reader = H2Reader(sock)
    while True:
        f = reader.frame(10)
        if f is None or (f[0] == SETTINGS and not f[1] & ACK):
            return sock, reader


# ---- modes ----

def mode_app(port):
    http.client._MAXHEADERS = 2000  # the sidecar's limit is under test, not Python's

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            names = [n.lower() for n in self.headers.keys()]
            body = json.dumps({"x_count": sum(1 for n in names if n.startswith("x-h")),
                               "big": len(self.headers.get("x-big", ""))}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    ThreadingHTTPServer(("127.0.0.1", int(port)), Handler).serve_forever()


def vmrss_kb(pid):
    with open("/proc/%s/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def amplification_block(authority, scheme):
    block = b"\x82" + (b"\x87" if scheme == "https" else b"\x86") + literal(4, "/api/amplify") + literal(1, authority)
    block += literal_new("x-amp", b"a" * 4000, first=0x40, prefix=6)  # into the dynamic table: index 62
    return block + b"\xbe" * (4 * FRAME_MAX - len(block))  # 0xbe: "index 62 again", one byte for 4,032


def mode_amplify(host, port, cert, key, conns, blocks, pid):
    base = vmrss_kb(pid)
    peak = [base]
    running = [True]

    def sample():
        while running[0]:
            try:
                peak[0] = max(peak[0], vmrss_kb(pid))
            except OSError:
                return
            time.sleep(0.02)

    results = [None] * int(conns)

    def attack(n):
        sock, reader = h2_start(host, port, cert, key)
        decoder = hpack.Decoder()
        block = amplification_block("%s:%s" % (host, port), "https" if cert != "-" else "http")
        answers = []
        for i in range(int(blocks)):
            if not send_frames(sock, block_frames(2 * i + 1, block, END_STREAM)):
                break
            answer, _ = read_answer(reader, decoder, 2 * i + 1)
            answers.append(answer)
            if answer in ("closed", "open") or answer.startswith("goaway"):
                break
        if answers and answers[-1].startswith("goaway"):
            # the server closes after its GOAWAY: wait for that (5 s at most)
            deadline = time.monotonic() + 5
            while not reader.closed and time.monotonic() < deadline:
                reader.frame(deadline - time.monotonic())
            answers.append("closed" if reader.closed else "open")
        results[n] = " ".join(answers)
        sock.close()

    sampler = threading.Thread(target=sample)
    sampler.start()
    threads = [threading.Thread(target=attack, args=(n,)) for n in range(int(conns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    running[0] = False
    sampler.join()
    for r in results:
        print(r)
    print("rss_growth_kb=%d" % (peak[0] - base))


def mode_unfinished(host, port, cert, key, conns, seconds):
    results = [None] * int(conns)

    def hold(n):
        sock, reader = h2_start(host, port, cert, key)
        start = time.monotonic()
        block = b"\x82" + (b"\x87" if cert != "-" else b"\x86") + literal(4, "/api/unfinished") + \
            literal(1, "%s:%s" % (host, port))
        for i in range(40):  # some 40 KB the server copies: within both limits
            block += literal_new("x-h%d" % i, "v" * 1000)
        pieces = [frame(HEADERS, END_STREAM, 1, block[:FRAME_MAX])]
        pieces += [frame(CONTINUATION, 0, 1, block[i:i + FRAME_MAX]) for i in range(FRAME_MAX, len(block), FRAME_MAX)]
        first = b"".join(pieces)
        # then a CONTINUATION a second, three times (nghttp2 itself allows a block 8 of them) ...
        pieces = [frame(CONTINUATION, 0, 1, literal_new("x-t%d" % i, "1")) for i in range(3)]
        # ... and one more whose 16 KB come 100 bytes a second
        slow = frame(CONTINUATION, 0, 1, literal_new("x-slow", "v" * 16000))
        pieces += [slow[i:i + 100] for i in range(0, len(slow), 100)]
        answer = None
        alive = send_frames(sock, [first])
        while alive and pieces and time.monotonic() - start < float(seconds):
            f = reader.frame(1.0)
            if reader.closed:
                break
            if f is not None and f[0] == GOAWAY:
                answer = "goaway=%d" % struct.unpack(">I", f[3][4:8])[0]
                continue
            alive = send_frames(sock, [pieces.pop(0)])
        took = time.monotonic() - start
        if not alive and not reader.closed:  # the write failed: the server is gone
            reader.frame(1.0)
        if reader.closed or not alive:
            results[n] = "closed after %.1f %s" % (took, answer or "goaway=none")
        else:
            results[n] = "open after %.1f" % took
        sock.close()

    threads = [threading.Thread(target=hold, args=(n,)) for n in range(int(conns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        print(r)


def mode_trickle(host, port, cert, key, hostheader, seconds, finish):
    sock = connect(host, port, cert, key, "http/1.1")
    start = time.monotonic()
    head = "GET /api/trickle HTTP/1.1\r\nHost: %s\r\nX-Slow: " % hostheader
    sock.sendall(head.encode())
    got, state = b"", "open"
    answered = None
    while time.monotonic() - start < float(seconds):
        if float(finish) > 0 and time.monotonic() - start >= float(finish):
            try:
                sock.sendall(b"done\r\nConnection: close\r\n\r\n")
            except OSError:
                pass
            finish = "0"
        sock.settimeout(2.0)
        try:
            data = sock.recv(65536)
            if not data:
                state = "closed"
                break
            got += data
            if answered is None and b"\r\n" in got:
                answered = time.monotonic() - start
        except (socket.timeout, ssl.SSLWantReadError):
            pass
        except (ConnectionResetError, ssl.SSLError, OSError):
            state = "closed"
            break
        if state == "open" and answered is None:
            try:
                sock.sendall(b"a")
            except OSError:
                state = "closed"
                break
    took = time.monotonic() - start
    line = got.split(b"\r\n")[0].decode(errors="replace") if got else "no answer"
    print("%s after %.1f" % (line, answered if answered is not None else took))
    print("%s after %.1f" % (state, took))


def mode_h1req(host, port, cert, key, hostheader, nfields, bigbytes):
    nfields, bigbytes = int(nfields), int(bigbytes)
    lines = ["Host: %s" % hostheader, "Connection: close"]
    if bigbytes > 0:
        lines.append("X-Big: " + "b" * bigbytes)
    lines += ["X-H%d: %d" % (i, i) for i in range(nfields - len(lines))]
    req = "GET /api/count HTTP/1.1\r\n" + "".join(l + "\r\n" for l in lines) + "\r\n"
    sock = connect(host, port, cert, key, "http/1.1")
    sock.sendall(req.encode())
    got = b""
    sock.settimeout(10)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                break
            got += data
    except (socket.timeout, ConnectionResetError, ssl.SSLError, OSError):
        pass
    head, _, body = got.partition(b"\r\n\r\n")
    status = head.split(b" ")[1].decode() if head.startswith(b"HTTP/1.1 ") else "none"
    print(status, body.decode(errors="replace").strip())


def mode_h2req(host, port, cert, key, authority, nfields, bigbytes):
    nfields, bigbytes = int(nfields), int(bigbytes)
    fields = [(":method", "GET"), (":scheme", "https" if cert != "-" else "http"), (":path", "/api/count"),
              (":authority", authority)]
    if bigbytes > 0:
        fields.append(("x-big", "b" * bigbytes))
    fields += [("x-h%d" % i, str(i)) for i in range(nfields - (1 if bigbytes > 0 else 0))]
    sock, reader = h2_start(host, port, cert, key)
    encoder = hpack.Encoder()
    send_frames(sock, block_frames(1, encoder.encode(fields), END_STREAM))
    status, body = read_answer(reader, hpack.Decoder(), 1)
    print(status, body.decode(errors="replace").strip())
    sock.close()


MODES = {"app": mode_app, "amplify": mode_amplify, "unfinished": mode_unfinished, "trickle": mode_trickle,
         "h1req": mode_h1req, "h2req": mode_h2req}

if __name__ == "__main__":
    MODES[sys.argv[1]](*sys.argv[2:])
