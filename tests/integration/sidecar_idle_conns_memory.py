"""Opens COUNT idle mTLS HTTP/2 connections to a listener and reports what the server's RSS grew by.

usage: sidecar_idle_conns_memory.py PORT CERT KEY CA COUNT PID
Each connection finishes the handshake (ALPN h2), sends the client preface
and an empty SETTINGS, and then stays idle. After 20 warm-up connections the
server's VmRSS is read, the COUNT connections are opened, and after 3.5 s of
idleness (the server gives an idle connection's buffers back after 1 s) it is
read again. Prints "open N of COUNT; KB_PER_CONN" with one decimal.
"""
import socket
import ssl
import sys
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


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
    print(f"open {opened} of {count}; {(after - before) / max(opened, 1):.1f}")
    for s in conns + warm:
        s.close()


if __name__ == "__main__":
    main()
