"""Holds many idle mTLS HTTP/2 connections open to one listener, for tools/soak.

One process, one epoll loop, non-blocking sockets. Each connection does a TLS 1.3
handshake with a client certificate and ALPN h2, sends the client preface and an
empty SETTINGS frame, then stays idle: it answers the server's SETTINGS and PING
and, when --keepalive is above zero, sends one small GET every --keepalive
seconds (staggered), so that the listener's idle timeout does not end it.
A connection that closes after the opening phase is counted (GOAWAY first:
"expired", anything else: "lost") and opened again.

Every second the counters go to --status as JSON (written whole, then renamed);
SIGTERM or --duration ends the run with a last write.
"""
import argparse
import heapq
import json
import os
import random
import selectors
import signal
import socket
import ssl
import struct
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
FRAME_DATA, FRAME_HEADERS, FRAME_RST_STREAM, FRAME_SETTINGS, FRAME_PING, FRAME_GOAWAY = 0, 1, 3, 4, 6, 7
FLAG_ACK, FLAG_END_STREAM, FLAG_END_HEADERS, FLAG_PADDED, FLAG_PRIORITY = 0x1, 0x1, 0x4, 0x8, 0x20
HPACK_STATUS_200 = 0x88  # static table entry 8, ":status: 200", as an indexed field
MAX_FRAME = 16384 + 9
WINDOW_UPDATE_AFTER = 32768  # connection-level DATA bytes before we give them back


def frame(ftype, flags, stream_id, payload=b""):
    return struct.pack(">I", len(payload))[1:] + struct.pack(">BBI", ftype, flags, stream_id) + payload


def keepalive_headers(authority):
    # GET https <authority> /soak-keepalive: indexed :method GET (2), :scheme https (7), then
    # :authority (1) and :path (4) as literals without indexing, so no dynamic table is involved
    a, p = authority.encode(), b"/soak-keepalive"
    return bytes([0x82, 0x87, 0x01, len(a)]) + a + bytes([0x04, len(p)]) + p


class Conn:
    __slots__ = ("sock", "state", "inbuf", "outbuf", "next_stream", "goaway", "unacked_data", "gen")

    def __init__(self, sock, gen):
        self.sock, self.state, self.gen = sock, "connect", gen
        self.inbuf, self.outbuf = bytearray(), bytearray()
        self.next_stream, self.goaway, self.unacked_data = 1, False, 0


class Idle:
    def __init__(self, a):
        self.a = a
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        self.ctx.load_cert_chain(a.cert, a.key)
        self.ctx.load_verify_locations(a.ca)
        # the server's certificate names a SPIFFE URI, not a DNS name: the chain is still verified
        self.ctx.check_hostname = False
        self.ctx.set_alpn_protocols(["h2"])
        self.sel = selectors.DefaultSelector()
        self.conns = {}  # fd -> Conn
        self.timers = []  # (due, fd, gen): keepalive requests
        self.gen = 0
        self.pending = 0  # connecting or handshaking
        self.phase = "opening"
        self.headers = keepalive_headers(a.authority)
        self.c = dict(target=a.count, open=0, opened_initial=0, open_seconds=None, connect_errors=0,
                      handshake_errors=0, first_error="", expired=0, lost=0, reopened=0,
                      keepalive_sent=0, keepalive_ok=0, keepalive_bad=0, pings=0)
        self.stop = False

    # --- connections
    def error(self, what):
        if not self.c["first_error"]:
            self.c["first_error"] = what[:200]

    def begin(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", self.a.port))
        except BlockingIOError:
            pass
        except OSError as e:
            s.close()
            self.c["connect_errors"] += 1
            self.error(f"connect: {e}")
            return False
        self.gen += 1
        conn = Conn(s, self.gen)
        self.conns[s.fileno()] = conn
        self.sel.register(s, selectors.EVENT_WRITE, conn)
        self.pending += 1
        return True

    def drop(self, conn, why):
        fd = conn.sock.fileno()
        if conn.state in ("connect", "handshake"):
            self.pending -= 1
            self.c["connect_errors" if conn.state == "connect" else "handshake_errors"] += 1
            self.error(why)
        elif conn.state == "open":
            self.c["open"] -= 1
            self.c["expired" if conn.goaway else "lost"] += 1
            if not conn.goaway:
                self.error(why)
        conn.state = "closed"
        self.sel.unregister(conn.sock)
        del self.conns[fd]
        conn.sock.close()

    def on_connected(self, conn):
        err = conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self.drop(conn, f"connect: {os.strerror(err)}")
            return
        conn.sock = self.ctx.wrap_socket(conn.sock, do_handshake_on_connect=False)
        conn.state = "handshake"
        self.handshake(conn)

    def handshake(self, conn):
        try:
            conn.sock.do_handshake()
        except ssl.SSLWantReadError:
            self.sel.modify(conn.sock, selectors.EVENT_READ, conn)
            return
        except ssl.SSLWantWriteError:
            self.sel.modify(conn.sock, selectors.EVENT_WRITE, conn)
            return
        except (ssl.SSLError, OSError) as e:
            self.drop(conn, f"handshake: {e}")
            return
        if conn.sock.selected_alpn_protocol() != "h2":
            self.drop(conn, f"handshake: ALPN {conn.sock.selected_alpn_protocol()!r}, not h2")
            return
        self.pending -= 1
        conn.state = "open"
        self.c["open"] += 1
        if self.phase == "opening":
            self.c["opened_initial"] += 1
        else:
            self.c["reopened"] += 1
        self.sel.modify(conn.sock, selectors.EVENT_READ, conn)
        self.send(conn, PREFACE + frame(FRAME_SETTINGS, 0, 0))
        if self.a.keepalive > 0:
            due = time.monotonic() + self.a.keepalive * random.uniform(0.5, 1.0)
            heapq.heappush(self.timers, (due, conn.sock.fileno(), conn.gen))

    def send(self, conn, data):
        conn.outbuf += data
        self.flush(conn)

    def flush(self, conn):
        while conn.outbuf and conn.state == "open":
            try:
                n = conn.sock.send(conn.outbuf)
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
                self.sel.modify(conn.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, conn)
                return
            except (ssl.SSLError, OSError) as e:
                self.drop(conn, f"send: {e}")
                return
            del conn.outbuf[:n]
        if conn.state == "open":
            self.sel.modify(conn.sock, selectors.EVENT_READ, conn)

    def read(self, conn):
        for _ in range(64):  # bounded: come back on the next readiness
            try:
                data = conn.sock.recv(65536)
            except (ssl.SSLWantReadError, BlockingIOError):
                break
            except ssl.SSLWantWriteError:
                self.sel.modify(conn.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, conn)
                break
            except (ssl.SSLError, OSError) as e:
                self.drop(conn, f"recv: {e}")
                return
            if not data:
                self.drop(conn, "closed by the server without GOAWAY")
                return
            conn.inbuf += data
            if not self.frames(conn):
                return

    def frames(self, conn):
        buf = conn.inbuf
        while len(buf) >= 9:
            length = int.from_bytes(buf[0:3], "big")
            if length + 9 > MAX_FRAME:
                self.drop(conn, f"frame of {length} bytes")
                return False
            if len(buf) < 9 + length:
                break
            ftype, flags = buf[3], buf[4]
            payload = bytes(buf[9:9 + length])
            del buf[:9 + length]
            if ftype == FRAME_SETTINGS and not flags & FLAG_ACK:
                self.send(conn, frame(FRAME_SETTINGS, FLAG_ACK, 0))
            elif ftype == FRAME_PING and not flags & FLAG_ACK:
                self.c["pings"] += 1
                self.send(conn, frame(FRAME_PING, FLAG_ACK, 0, payload))
            elif ftype == FRAME_GOAWAY:
                conn.goaway = True
                self.drop(conn, "GOAWAY")
                return False
            elif ftype == FRAME_HEADERS:
                block = payload
                if flags & FLAG_PADDED:
                    block = block[1:len(block) - block[0]] if block else b""
                if flags & FLAG_PRIORITY:
                    block = block[5:]
                ok = bool(block) and block[0] == HPACK_STATUS_200
                self.c["keepalive_ok" if ok else "keepalive_bad"] += 1
            elif ftype == FRAME_RST_STREAM:
                self.c["keepalive_bad"] += 1
            elif ftype == FRAME_DATA and length:
                conn.unacked_data += length
                if conn.unacked_data >= WINDOW_UPDATE_AFTER:
                    self.send(conn, frame(8, 0, 0, struct.pack(">I", conn.unacked_data)))
                    conn.unacked_data = 0
            if conn.state != "open":
                return False
        return True

    def keepalive(self, now):
        while self.timers and self.timers[0][0] <= now:
            _, fd, gen = heapq.heappop(self.timers)
            conn = self.conns.get(fd)
            if conn is None or conn.gen != gen or conn.state != "open":
                continue
            sid = conn.next_stream
            conn.next_stream += 2
            self.c["keepalive_sent"] += 1
            self.send(conn, frame(FRAME_HEADERS, FLAG_END_STREAM | FLAG_END_HEADERS, sid, self.headers))
            heapq.heappush(self.timers, (now + self.a.keepalive, fd, gen))

    # --- the loop
    def write_status(self):
        tmp = self.a.status + ".tmp"
        with open(tmp, "w") as f:
            json.dump(dict(self.c, phase=self.phase, pending=self.pending), f)
        os.replace(tmp, self.a.status)

    def run(self):
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stop", True))
        t0 = time.monotonic()
        open_deadline = t0 + self.a.open_timeout
        end = t0 + self.a.duration
        next_status = t0
        started = 0
        while not self.stop:
            now = time.monotonic()
            if now >= end:
                break
            if self.phase == "opening":
                while started < self.a.count and self.pending < self.a.parallel:
                    started += 1
                    self.begin()
                if (started >= self.a.count and self.pending == 0) or now >= open_deadline:
                    self.phase = "holding"
                    self.c["open_seconds"] = round(now - t0, 1)
                    for conn in [c for c in self.conns.values() if c.state != "open"]:
                        self.drop(conn, "not open when the opening phase ended")
            else:
                # replace connections the server ended, at the opening pace
                missing = self.c["opened_initial"] - self.c["open"] - self.pending
                while missing > 0 and self.pending < self.a.parallel:
                    missing -= 1
                    if not self.begin():
                        break
            self.keepalive(now)
            timeout = 0.2 if not self.timers else max(0.0, min(0.2, self.timers[0][0] - now))
            for key, events in self.sel.select(timeout):
                conn = key.data
                if conn.state == "closed":
                    continue
                if conn.state == "connect":
                    self.on_connected(conn)
                elif conn.state == "handshake":
                    self.handshake(conn)
                else:
                    if events & selectors.EVENT_WRITE and conn.outbuf:
                        self.flush(conn)
                    if conn.state == "open" and events & selectors.EVENT_READ:
                        self.read(conn)
            if now >= next_status:
                self.write_status()
                next_status = now + 1.0
        if self.c["open_seconds"] is None:
            self.c["open_seconds"] = round(time.monotonic() - t0, 1)
        self.write_status()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True, help="the listener on 127.0.0.1")
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--ca", required=True, help="roots that verify the server")
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--authority", default="127.0.0.1")
    p.add_argument("--parallel", type=int, default=64, help="connects and handshakes in flight")
    p.add_argument("--open-timeout", type=float, required=True, help="seconds for the opening phase")
    p.add_argument("--keepalive", type=float, default=60, help="seconds between GETs per connection; 0: none")
    p.add_argument("--duration", type=float, required=True, help="seconds before giving up on its own")
    p.add_argument("--status", required=True)
    Idle(p.parse_args()).run()


if __name__ == "__main__":
    main()
