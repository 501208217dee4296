#!/usr/bin/env python3
"""Parallel mTLS handshakes against one TLS 1.3 listener, for tools/bench.

Starts --clients processes that each, until --seconds have passed, connect,
handshake presenting a client certificate and wait for the server's session
ticket, then close. A handshake counts as completed only when the ticket has
arrived: an OpenSSL server sends it after it has checked the client's
certificate and Finished, so a server that refuses the certificate is seen
as a failure, not as a fast handshake. With --mode resumed each process
offers the newest ticket it holds (the first handshake is a full one) and
counts how many the server actually resumed; with --mode full it never
offers one. No request is sent: the server's CPU over the run is the cost of
the handshakes (and their TCP connections) alone.

Prints one JSON object: completed, resumed, failed, seconds (wall clock
from the start of the first process to the end of the last), clients.
"""
import argparse
import json
import multiprocessing
import queue
import select
import socket
import ssl
import sys
import time

TICKET_WAIT_S = 1.0  # a ticket that takes longer than this counts the handshake as failed
CONNECT_TIMEOUT_S = 5.0


def wait_for_ticket(tls):
    """Reads until the server's session ticket has been processed; returns the session, or None."""
    tls.setblocking(False)
    deadline = time.monotonic() + TICKET_WAIT_S
    while True:
        session = tls.session
        if session is not None and session.has_ticket:
            return session
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        select.select([tls], [], [], remaining)
        try:
            if not tls.recv(1):
                return None  # the server closed: it did not accept the handshake
        except ssl.SSLWantReadError:
            pass  # a ticket (or part of one) was read and nothing else is there
        except (ssl.SSLError, OSError):
            return None


def run_client(args, deadline, results):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_verify_locations(args.ca)
    ctx.load_cert_chain(args.cert, args.key)
    # The chain is still verified (CERT_REQUIRED); the server's name is a SPIFFE ID in a URI SAN,
    # which the ssl module cannot match, and this client only measures the server's handshake cost.
    ctx.check_hostname = False
    ctx.set_alpn_protocols(["h2"])
    completed = resumed = failed = 0
    session = None
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((args.host, args.port), timeout=CONNECT_TIMEOUT_S) as raw:
                offer = session if args.mode == "resumed" else None
                with ctx.wrap_socket(raw, session=offer) as tls:
                    was_resumed = tls.session_reused
                    ticket_session = wait_for_ticket(tls)
                    if ticket_session is None:
                        failed += 1
                        continue
                    completed += 1
                    resumed += 1 if was_resumed else 0
                    session = ticket_session
        except (ssl.SSLError, OSError):
            failed += 1
            time.sleep(0.01)  # a refused or reset connection must not turn into a busy loop
    results.put({"completed": completed, "resumed": resumed, "failed": failed, "end": time.time()})


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--mode", choices=("full", "resumed"), required=True)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, required=True)
    args = parser.parse_args()
    if not 1 <= args.clients <= 64 or not 0 < args.seconds <= 300:
        parser.error("--clients must be 1..64 and --seconds 0..300")

    results = multiprocessing.Queue()
    start = time.time()
    deadline = time.monotonic() + args.seconds
    workers = [multiprocessing.Process(target=run_client, args=(args, deadline, results)) for _ in range(args.clients)]
    for w in workers:
        w.start()
    # each worker ends by itself after --seconds plus at most one connect and one ticket wait
    try:
        parts = [results.get(timeout=args.seconds + CONNECT_TIMEOUT_S + TICKET_WAIT_S + 10) for _ in workers]
    except queue.Empty:
        for w in workers:
            w.terminate()
        for w in workers:
            w.join()
        sys.exit("bench-handshakes: a client process did not report")
    for w in workers:
        w.join()
    total = {k: sum(p[k] for p in parts) for k in ("completed", "resumed", "failed")}
    total["seconds"] = round(max(p["end"] for p in parts) - start, 3)
    total["clients"] = args.clients
    json.dump(total, sys.stdout)
    print()


if __name__ == "__main__":
    main()
