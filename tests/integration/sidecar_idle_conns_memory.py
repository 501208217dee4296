"""Opens COUNT idle mTLS HTTP/2 connections to a listener and reports what the server's RSS grew by.

usage: sidecar_idle_conns_memory.py PORT CERT KEY CA COUNT PID
Each connection finishes the handshake (ALPN h2), sends the client preface
and an empty SETTINGS, and then stays idle. After 20 warm-up connections the
server's VmRSS is read, the COUNT connections are opened, and after 3.5 s of
idleness (the server gives an idle connection's buffers back after 1 s) it is
read again. Then REUSED of the idle connections each send a request, wait
1.5 s (long enough to be given back again, now with a closed stream behind
them) and send another, to /after-idle; an answer counts once its stream
ended with a response HEADERS frame (the caller reads the status from the
access log). Prints "open N of COUNT; answered M of 2*REUSED; KB_PER_CONN",
the last with one decimal.
"""
import socket
import ssl
import struct
import sys
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
REUSED = 5
HEADERS, DATA, SETTINGS, GOAWAY = 0x1, 0x0, 0x4, 0x7
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def open_conn(ctx, port):
    sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10))
    if sock.selected_alpn_protocol() != "h2":
        raise ssl.SSLError("no h2")
    sock.sendall(PREFACE)
    return sock


def frame(ftype, flags, stream_id, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream_id) + payload


def read_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def header_block(fields):
    """HPACK literal fields without indexing, new names, no Huffman coding (RFC 7541 6.2.2); short strings only."""
    block = b""
    for name, value in fields:
        block += b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value
    return block


def request(sock, stream_id):
    """Sends a GET on stream_id; returns True once the stream ended after a response HEADERS frame."""
    block = header_block([(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"idle.test"),
                          (b":path", b"/after-idle")])
    sock.sendall(frame(HEADERS, END_STREAM | END_HEADERS, stream_id, block))
    headers = False
    while True:
        head = read_exact(sock, 9)
        length = int.from_bytes(head[:3], "big")
        ftype, flags, sid = head[3], head[4], int.from_bytes(head[5:9], "big") & 0x7FFFFFFF
        payload = read_exact(sock, length)
        if ftype == SETTINGS and not flags & ACK:
            sock.sendall(frame(SETTINGS, ACK, 0))
        elif ftype == GOAWAY:
            return False
        elif ftype == HEADERS and sid == stream_id:
            headers = True
        if sid == stream_id and flags & END_STREAM and ftype in (HEADERS, DATA):
            return headers


def reuse(conns):
    """Each connection answers a request, is idle long enough to be given back again, then answers another."""
    answered = 0
    for stream_id in (1, 3):
        for sock in conns:
            try:
                answered += request(sock, stream_id)
            except (OSError, ssl.SSLError):
                pass
        if stream_id == 1:
            time.sleep(1.5)
    return answered


def main():
    port, cert, key, ca, count, pid = sys.argv[1:7]
    port, count, pid = int(port), int(count), int(pid)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(ca)
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols(["h2"])
    warm = [open_conn(ctx, port) for _ in range(20)]
    time.sleep(1.5)
    before = rss_kb(pid)
    conns = []
    deadline = time.time() + 120
    for _ in range(count):
        if time.time() > deadline:
            break
        try:
            conns.append(open_conn(ctx, port))
        except (OSError, ssl.SSLError):
            break
    time.sleep(3.5)
    after = rss_kb(pid)
    opened = len(conns)
    answered = reuse(conns[:REUSED])
    print(f"open {opened} of {count}; answered {answered} of {2 * REUSED}; {(after - before) / max(opened, 1):.1f}")
    for s in conns + warm:
        s.close()


if __name__ == "__main__":
    main()
