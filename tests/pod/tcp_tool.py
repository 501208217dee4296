#!/usr/bin/env python3
"""Opaque TCP for the pod test: a server and a client that speak no HTTP.

server --host H --port P [--banner TEXT] [--log FILE]
    Accepts connections; sends TEXT first when given (a server-speaks-first protocol), then echoes
    each line back. When the client half-closes, answers "got N bytes" and closes; the log gets
    "half-close N" so the test sees the client's close arrived as a close.
    A line "SEND N" makes the server send N megabytes and half-close first; whatever the client
    still sends after that is counted, and the log gets "after-send N" at the client's close.
client --target H:P [--send TEXT] [--expect-banner TEXT] [--half-close] [--big MB] [--download MB]
    Prints one verdict line: "ok ..." or "fail ...". --big streams MB megabytes, half-closes and
    expects the server's count. --download asks for MB megabytes, expects them and the server's
    half-close, then sends one line more and closes.
"""
import argparse
import socket
import sys
import threading
import time


def serve_one(conn, banner, log):
    total = 0
    try:
        if banner:
            conn.sendall(banner.encode() + b"\r\n")
        buf = b""
        while True:
            data = conn.recv(65536)
            if not data:
                break
            total += len(data)
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if line.startswith(b"SEND "):
                    send_then_count(conn, int(line[5:]), log)
                    return
                conn.sendall(line + b"\n")
            if len(buf) > 65536:
                buf = b""  # a bulk transfer: count it, do not echo it
        if log:
            with open(log, "a") as f:
                f.write("half-close %d\n" % total)
        conn.sendall(b"got %d bytes\n" % total)
    except OSError:
        pass
    finally:
        conn.close()


def send_then_count(conn, mb, log):
    chunk = b"y" * 65536
    for _ in range(mb * 16):
        conn.sendall(chunk)
    conn.shutdown(socket.SHUT_WR)  # the server's half-close: the client may still send
    after = 0
    while True:
        data = conn.recv(65536)
        if not data:
            break
        after += len(data)
    if log:
        with open(log, "a") as f:
            f.write("after-send %d\n" % after)


def server(args):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((args.host, args.port))
    s.listen(64)
    while True:
        conn, _ = s.accept()
        threading.Thread(target=serve_one, args=(conn, args.banner, args.log), daemon=True).start()


def recv_until(sock, needle, deadline):
    buf = b""
    while needle not in buf:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        data = sock.recv(65536)
        if not data:
            break
        buf += data
    return buf


def client(args):
    host, port = args.target.rsplit(":", 1)
    deadline = time.monotonic() + args.timeout
    try:
        sock = socket.create_connection((host, int(port)), timeout=args.timeout)
    except OSError as e:
        print("fail connect: %s" % e)
        return 1
    try:
        if args.expect_banner:
            got = recv_until(sock, args.expect_banner.encode(), deadline)
            if args.expect_banner.encode() not in got:
                print("fail banner: got %r" % got[:200])
                return 1
        if args.big:
            chunk = b"x" * 65536
            for _ in range(args.big * 16):
                sock.sendall(chunk)
            sock.shutdown(socket.SHUT_WR)
            want = b"got %d bytes" % (args.big * 1024 * 1024)
            got = recv_until(sock, want, deadline)
            if want not in got:
                print("fail big: got %r" % got[-200:])
                return 1
            print("ok big %d MB" % args.big)
            return 0
        if args.download:
            sock.sendall(b"SEND %d\n" % args.download)
            want = args.download * 1024 * 1024
            got = 0
            while True:
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                data = sock.recv(1 << 20)
                if not data:
                    break
                got += len(data)
            if got != want:
                print("fail download: got %d of %d bytes before the end of stream" % (got, want))
                return 1
            sock.sendall(b"after the server's half-close\n")
            sock.shutdown(socket.SHUT_WR)
            print("ok download %d MB, eof, sent after it" % args.download)
            return 0
        if args.send:
            sock.sendall(args.send.encode() + b"\n")
            got = recv_until(sock, args.send.encode() + b"\n", deadline)
            if args.send.encode() not in got:
                print("fail echo: got %r" % got[:200])
                return 1
        if args.half_close:
            sock.shutdown(socket.SHUT_WR)
            got = recv_until(sock, b"bytes\n", deadline)
            if b"got " not in got:
                print("fail half-close: got %r" % got[:200])
                return 1
            rest = recv_until(sock, b"\x00never", deadline)  # the server's close must arrive as end of stream
            print("ok %s" % got.decode().strip().splitlines()[-1] + (" eof" if rest == b"" else " no-eof"))
            return 0
        print("ok echo")
        return 0
    except socket.timeout:
        print("fail timeout")
        return 1
    except OSError as e:
        print("fail %s" % e)
        return 1
    finally:
        sock.close()


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("server")
    s.add_argument("--host", default="0.0.0.0")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--banner")
    s.add_argument("--log")
    c = sub.add_parser("client")
    c.add_argument("--target", required=True)
    c.add_argument("--send")
    c.add_argument("--expect-banner")
    c.add_argument("--half-close", action="store_true")
    c.add_argument("--big", type=int, default=0)
    c.add_argument("--download", type=int, default=0)
    c.add_argument("--timeout", type=float, default=10.0)
    args = p.parse_args()
    return server(args) if args.mode == "server" else client(args)


if __name__ == "__main__":
    sys.exit(main())
