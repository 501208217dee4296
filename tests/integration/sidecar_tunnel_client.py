#!/usr/bin/python3
"""TCP tunnels into the sidecar's inbound listener (HTTP/2 CONNECT, RFC 9113 8.5), and the app behind them (tests only).

The client speaks mTLS HTTP/2 (ALPN h2) with Debian's python3-h2, verifies the
sidecar's chain against the trust bundle and sends only what the stream's and
the connection's flow-control windows allow. Every mode gives up by itself: a
wait that runs out prints "timeout" where the awaited thing would be.

usage: sidecar_tunnel_client.py server PORT LOG
  A TCP app on 127.0.0.1:PORT. Each connection begins with one command line:
    ECHO        echoes every later byte; at the client's half-close answers
                "got N bytes" (N: the bytes after the command line) and closes
    SINK        counts what follows; at the half-close answers "got N bytes"
    SOURCE N    sends N bytes of the test pattern and half-closes, then reads to EOF
    RESET       sends "bye", and 0.3 s later resets the connection (SO_LINGER 0)
  LOG gets one line per event: "conn K accepted", "conn K MODE eof after N bytes
  sha256 H" (H of the bytes after the command line), "conn K MODE reset after N
  bytes", "conn K SOURCE sent N bytes", "conn K RESET sent".

usage: sidecar_tunnel_client.py stuck PORT
  A listener on 127.0.0.1:PORT that never accepts, its backlog filled by
  connections of its own: a further connect gets no answer (the kernel drops
  its SYN), so a connecting sidecar runs into its timeout. Prints "stuck after N"
  once it is.

usage: sidecar_tunnel_client.py MODE HOST PORT CERT KEY BUNDLE AUTHORITY [ARGS...]
  echo TEXT
      CONNECT, "ECHO" and TEXT; once TEXT came back, END_STREAM; then reads to the
      end. Prints "STATUS echo=[TEXT BACK] reply=[WHAT CAME AFTER] end=END"; END is
      END_STREAM, rst=CODE, closed or timeout.
  upload N
      CONNECT, "SINK" and N bytes of the pattern, then END_STREAM. Prints
      "STATUS sent=N sha256=H reply=[...] end=END".
  download N
      CONNECT, "SOURCE N"; reads to the app's END_STREAM, and only then sends
      "bye" (the other direction is still open) and its own END_STREAM. Prints
      "STATUS received=N intact=yes|no end=END".
  reset TEXT
      an echo of TEXT, then RST_STREAM CANCEL while the tunnel is open; then an
      echo tunnel on the same connection. Prints "STATUS echo=[...] reset" and the
      second tunnel's echo line.
  reset-busy N
      CONNECT, "ECHO", then up to N bytes without taking any of the echo (our
      receive window closes, so the echo backs up into the sidecar and the app);
      RST_STREAM CANCEL once nothing moved for 1 s; then an echo tunnel on the same
      connection. Prints "STATUS sent=N reset" and the second tunnel's echo line.
  appreset
      CONNECT and "RESET": the app answers "bye" and resets its connection.
      Prints "STATUS body=[...] end=END".
  connect
      CONNECT alone (a refusal is expected). Prints "STATUS BODY" (the body on one
      line) or "rst=CODE", "closed", "timeout".
  h1connect
      "CONNECT AUTHORITY HTTP/1.1" over TLS with ALPN http/1.1. Prints "ALPN STATUS BODY".
"""
import hashlib
import select
import socket
import ssl
import struct
import sys
import threading
import time

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

BLOCK = bytes(i % 251 for i in range(251 * 256))  # the pattern's period divides the block
WAIT = 20          # seconds for any one awaited thing (an answer, an echo, the end)
TRANSFER_WAIT = 120  # seconds for a whole large transfer
RECV_WINDOW = 1 << 20  # our receive window per stream ...
CONN_WINDOW = 16 << 20  # ... and for the connection: a stream that stops reading does not stall the others


def pattern(n):
    """The first n bytes of the test pattern."""
    return (BLOCK * (n // len(BLOCK) + 1))[:n]


# ---- the app behind the tunnel ----

def mode_server(port, log_path):
    lock = threading.Lock()
    log = open(log_path, "a", buffering=1)

    def note(text):
        with lock:
            log.write(text + "\n")

    def serve(conn, k):
        f = conn.makefile("rb")
        mode, count, digest = "?", 0, hashlib.sha256()
        try:
            line = f.readline(256)
            words = line.decode(errors="replace").split()
            mode = words[0] if words else "?"
            if mode == "RESET":
                conn.sendall(b"bye\n")
                time.sleep(0.3)
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                note("conn %d RESET sent" % k)
                return
            if mode == "SOURCE":
                n = int(words[1])
                conn.sendall(pattern(n))
                note("conn %d SOURCE sent %d bytes" % (k, n))
                conn.shutdown(socket.SHUT_WR)
            while True:
                data = f.read1(65536)
                if not data:
                    break
                count += len(data)
                digest.update(data)
                if mode == "ECHO":
                    conn.sendall(data)
            note("conn %d %s eof after %d bytes sha256 %s" % (k, mode, count, digest.hexdigest()))
            if mode in ("ECHO", "SINK"):
                conn.sendall(b"got %d bytes\n" % count)
        except (ConnectionResetError, BrokenPipeError) as e:
            note("conn %d %s reset after %d bytes (%s)" % (k, mode, count, type(e).__name__))
        except OSError as e:
            note("conn %d %s error after %d bytes (%s)" % (k, mode, count, e))
        finally:
            f.close()
            conn.close()

    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", int(port)))
    srv.listen(64)
    k = 0
    while True:
        conn, _ = srv.accept()
        k += 1
        note("conn %d accepted" % k)
        threading.Thread(target=serve, args=(conn, k), daemon=True).start()


def mode_stuck(port):
    srv = socket.socket()
    srv.bind(("127.0.0.1", int(port)))
    srv.listen(0)
    held = []
    while True:  # connections of our own until one is not answered: the accept queue is full
        if len(held) == 8:
            raise SystemExit("127.0.0.1:%s still answers after 8 connections" % port)
        try:
            held.append(socket.create_connection(("127.0.0.1", int(port)), timeout=1))
        except socket.timeout:
            break
    print("stuck after %d" % len(held), flush=True)
    while held:
        time.sleep(60)


# ---- the mTLS HTTP/2 client ----

class Tunnels:
    """One mTLS HTTP/2 connection and its CONNECT streams."""

    def __init__(self, host, port, cert, key, bundle):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False  # the sidecar's certificate names a SPIFFE ID, no host; the chain is verified
        ctx.load_verify_locations(bundle)
        ctx.load_cert_chain(cert, key)
        ctx.set_alpn_protocols(["h2"])
        self.sock = ctx.wrap_socket(socket.create_connection((host, int(port)), timeout=WAIT))
        if self.sock.selected_alpn_protocol() != "h2":
            raise SystemExit("ALPN gave %r, not h2" % self.sock.selected_alpn_protocol())
        # CONNECT has no :scheme and :path: nothing here may add or refuse them
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=True, header_encoding="utf-8", validate_outbound_headers=False))
        self.conn.initiate_connection()
        self.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: RECV_WINDOW})
        self.conn.increment_flow_control_window(CONN_WINDOW - 65535)
        self.closed = False
        self.streams = {}
        self.flush()

    def flush(self):
        data = self.conn.data_to_send()
        if data and not self.closed:
            try:
                self.sock.sendall(data)
            except OSError:
                self.closed = True

    def pump(self, timeout):
        """Reads what arrives within timeout and acts on it."""
        if self.closed:
            time.sleep(min(timeout, 0.1))
            return
        if self.sock.pending() == 0:
            ready, _, _ = select.select([self.sock], [], [], timeout)
            if not ready:
                return
        try:
            data = self.sock.recv(65536)
        except (socket.timeout, ssl.SSLWantReadError):
            return
        except OSError:
            self.closed = True
            return
        if not data:
            self.closed = True
            return
        for ev in self.conn.receive_data(data):
            s = self.streams.get(getattr(ev, "stream_id", None))
            if isinstance(ev, h2.events.ResponseReceived) and s is not None:
                s["status"] = dict(ev.headers).get(":status", "?")
            elif isinstance(ev, h2.events.DataReceived) and s is not None:
                s["body"] += ev.data
                if s["ack"]:
                    try:
                        self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    except h2.exceptions.StreamClosedError:
                        pass
                else:
                    s["unacked"] += ev.flow_controlled_length
            elif isinstance(ev, h2.events.StreamEnded) and s is not None:
                s["end"] = "END_STREAM"
            elif isinstance(ev, h2.events.StreamReset) and s is not None:
                s["end"] = "rst=%d" % ev.error_code
            elif isinstance(ev, h2.events.ConnectionTerminated):
                self.closed = True
        self.flush()

    def open(self, authority, ack=True):
        sid = self.conn.get_next_available_stream_id()
        self.streams[sid] = {"status": None, "body": bytearray(), "end": None, "ack": ack, "unacked": 0}
        self.conn.send_headers(sid, [(":method", "CONNECT"), (":authority", authority)])
        self.flush()
        return sid

    def wait(self, cond, seconds=WAIT):
        """Pumps until cond() holds; False when seconds ran out or the connection closed first."""
        deadline = time.monotonic() + seconds
        while not cond():
            if self.closed or time.monotonic() >= deadline:
                return cond()
            self.pump(min(0.2, max(0.0, deadline - time.monotonic())))
        return True

    def answered(self, sid):
        s = self.streams[sid]
        return self.wait(lambda: s["status"] is not None or s["end"] is not None)

    def send(self, sid, data, end=False, seconds=TRANSFER_WAIT, stall=None):
        """Sends data within the flow-control windows; returns the bytes sent. stall: give up after this
        many seconds without window."""
        s = self.streams[sid]
        deadline = time.monotonic() + seconds
        sent = 0
        view = memoryview(data)
        reset = lambda: s["end"] not in (None, "END_STREAM")  # the peer's END_STREAM ends only its direction
        while sent < len(data):
            if reset() or self.closed or time.monotonic() >= deadline:
                return sent
            room = min(self.window(sid), self.conn.max_outbound_frame_size)
            if room <= 0:
                # no window: wait for the peer's WINDOW_UPDATE (at most stall seconds when given)
                if not self.wait(lambda: self.window(sid) > 0 or reset(),
                                 stall if stall is not None else max(0.0, deadline - time.monotonic())):
                    return sent
                continue
            n = min(room, len(data) - sent)
            self.conn.send_data(sid, view[sent:sent + n].tobytes())
            sent += n
            self.flush()
            if self.sock.pending() or select.select([self.sock], [], [], 0)[0]:
                self.pump(0)  # window updates and the peer's bytes, as they come
        if end:
            self.end(sid)
        return sent

    def window(self, sid):
        """What may be sent on sid now: the smaller of its window and the connection's (0 once it closed)."""
        try:
            return self.conn.local_flow_control_window(sid)
        except h2.exceptions.StreamClosedError:
            return 0

    def end(self, sid):
        try:
            self.conn.end_stream(sid)
        except h2.exceptions.StreamClosedError:
            return
        self.flush()

    def reset(self, sid):
        try:
            self.conn.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
        except h2.exceptions.StreamClosedError:
            return
        self.flush()

    def finish(self, sid, seconds=WAIT):
        s = self.streams[sid]
        self.wait(lambda: s["end"] is not None, seconds)
        return s["end"] or ("closed" if self.closed else "timeout")

    def close(self):
        if not self.closed:
            try:
                self.conn.close_connection()
                self.flush()
            except h2.exceptions.ProtocolError:
                pass
        self.sock.close()


def show(b):
    return b.decode(errors="replace").replace("\n", "\\n")


def open_tunnel(t, authority, ack=True):
    """Opens a tunnel: (sid, stream, None) once answered 200, else (sid, stream, its line: status, body, end)."""
    sid = t.open(authority, ack=ack)
    s = t.streams[sid]
    if t.answered(sid) and s["status"] == "200":
        return sid, s, None
    return sid, s, "%s %s end=%s" % (s["status"] or "none", show(s["body"]), t.finish(sid, 1))


def echo_once(t, authority, text):
    """One echo tunnel; returns its line."""
    sid, s, refused = open_tunnel(t, authority)
    if refused is not None:
        return refused
    want = text.encode() + b"\n"
    t.send(sid, b"ECHO\n" + want, seconds=WAIT)
    t.wait(lambda: len(s["body"]) >= len(want) or s["end"] is not None)
    echoed = s["body"][:len(want)]
    t.end(sid)  # the half-close; the app still answers after it
    end = t.finish(sid)
    return "%s echo=[%s] reply=[%s] end=%s" % (s["status"], show(echoed), show(s["body"][len(want):]), end)


def mode_echo(t, authority, text):
    print(echo_once(t, authority, text))


def mode_upload(t, authority, n):
    n = int(n)
    data = pattern(n)
    sid, s, refused = open_tunnel(t, authority)
    if refused is not None:
        print(refused)
        return
    t.send(sid, b"SINK\n", seconds=WAIT)
    sent = t.send(sid, data, end=True)
    end = t.finish(sid)
    print("%s sent=%d sha256=%s reply=[%s] end=%s" % (s["status"], sent, hashlib.sha256(data[:sent]).hexdigest(),
                                                     show(s["body"]), end))


def mode_download(t, authority, n):
    n = int(n)
    sid, s, refused = open_tunnel(t, authority)
    if refused is not None:
        print(refused)
        return
    t.send(sid, b"SOURCE %d\n" % n, seconds=WAIT)
    end = t.finish(sid, TRANSFER_WAIT)  # the app's END_STREAM first; ours only after it
    t.send(sid, b"bye\n", end=True, seconds=WAIT)
    t.pump(0.2)  # a reset the sidecar may answer with shows in the access log and the app's
    intact = "yes" if s["body"] == pattern(n) else "no"
    print("%s received=%d intact=%s end=%s" % (s["status"], len(s["body"]), intact, end))


def mode_reset(t, authority, text):
    sid, s, refused = open_tunnel(t, authority)
    if refused is not None:
        print(refused)
        return
    want = text.encode() + b"\n"
    t.send(sid, b"ECHO\n" + want, seconds=WAIT)
    t.wait(lambda: len(s["body"]) >= len(want) or s["end"] is not None)
    t.reset(sid)
    print("%s echo=[%s] reset" % (s["status"], show(s["body"])))
    t.pump(0.3)
    print(echo_once(t, authority, text + " again"))


def mode_reset_busy(t, authority, n):
    sid, s, refused = open_tunnel(t, authority, ack=False)
    if refused is not None:
        print(refused)
        return
    t.send(sid, b"ECHO\n", seconds=WAIT)
    sent = t.send(sid, pattern(int(n)), seconds=TRANSFER_WAIT, stall=1.0)
    t.reset(sid)
    print("%s sent=%d reset" % (s["status"], sent))
    # the connection's window still counts what the reset stream took: give it back
    if s["unacked"]:
        t.conn.increment_flow_control_window(s["unacked"])
        t.flush()
    t.pump(0.3)
    print(echo_once(t, authority, "after a busy reset"))


def mode_appreset(t, authority):
    sid, s, refused = open_tunnel(t, authority)
    if refused is not None:
        print(refused)
        return
    t.send(sid, b"RESET\n", seconds=WAIT)
    end = t.finish(sid)
    print("%s body=[%s] end=%s" % (s["status"], show(s["body"]), end))


def mode_connect(t, authority):
    sid = t.open(authority)
    s = t.streams[sid]
    end = t.finish(sid)
    if s["status"] is None:
        print(end)
        return
    if s["status"] == "200":
        t.reset(sid)
    print("%s %s" % (s["status"], show(s["body"]).strip()))


def mode_h1connect(host, port, cert, key, bundle, authority):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(bundle)
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols(["http/1.1"])
    sock = ctx.wrap_socket(socket.create_connection((host, int(port)), timeout=WAIT))
    alpn = sock.selected_alpn_protocol()
    sock.sendall(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (authority, authority)).encode())
    got = b""
    deadline = time.monotonic() + WAIT
    length = None
    while time.monotonic() < deadline:
        head, sep, body = got.partition(b"\r\n\r\n")
        if sep:
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            if length is not None and len(body) >= length:
                break
        try:
            data = sock.recv(65536)
        except (socket.timeout, OSError):
            break
        if not data:
            break
        got += data
    sock.close()
    head, _, body = got.partition(b"\r\n\r\n")
    status = head.split(b" ")[1].decode() if head.startswith(b"HTTP/1.1 ") else "none"
    print("%s %s %s" % (alpn, status, show(body).strip()))


def mode_refused_many(t, authority, n):
    """n CONNECTs the sidecar refuses, then 256 KiB offered on each: a refused stream must end (RST_STREAM
    NO_ERROR after the answer), never sit open taking bytes nobody reads."""
    sids = [t.open(authority) for _ in range(int(n))]
    for sid in sids:
        t.answered(sid)
    taken = sum(t.send(sid, b"x" * 262144, seconds=5, stall=0.5) for sid in sids)
    t.wait(lambda: all(t.streams[sid]["end"] not in (None, "END_STREAM") for sid in sids), 5)
    statuses = sorted({t.streams[sid]["status"] or "none" for sid in sids})
    ends = sorted({t.streams[sid]["end"] or "open" for sid in sids})
    print("status=%s ends=%s taken=%d" % (",".join(statuses), ",".join(ends), taken))


MODES = {"echo": mode_echo, "refused-many": mode_refused_many, "upload": mode_upload, "download": mode_download, "reset": mode_reset,
         "reset-busy": mode_reset_busy, "appreset": mode_appreset, "connect": mode_connect}

if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "server":
        mode_server(*sys.argv[2:])
    elif mode == "stuck":
        mode_stuck(*sys.argv[2:])
    elif mode == "h1connect":
        mode_h1connect(*sys.argv[2:])
    else:
        host, port, cert, key, bundle, authority = sys.argv[2:8]
        tunnels = Tunnels(host, port, cert, key, bundle)
        try:
            MODES[mode](tunnels, authority, *sys.argv[8:])
        finally:
            tunnels.close()
