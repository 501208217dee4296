#!/usr/bin/env python3
"""Idle connections held against a listener, and when the server let go of each (tests only).

usage: sidecar_idle_conns.py PORT COUNT HOLD_SECONDS READY_FILE [drip]

Opens COUNT TCP connections to 127.0.0.1:PORT (each connect bounded by 2 s)
and sends nothing on them; with "drip" it opens one connection and sends the
start of a TLS ClientHello one byte per second instead, so the server reads
something every second and the handshake never ends. Once every connection is
open it writes their number to READY_FILE. It then watches them until the
server has closed all of them or HOLD_SECONDS (at most 60) have passed, closes
what is left, and prints one JSON object:

  opened        connections that connected
  failed        connects that failed or timed out
  refused       closed by the server within 1 s of their connect (turned away)
  closed_later  closed by the server after that (a deadline)
  left_open     still open when the hold ended (closed by this script)
  first_later_s, last_later_s  seconds from connect to the server's close, over closed_later
"""
import json
import selectors
import socket
import sys
import time

REFUSED_WITHIN_S = 1.0
HOLD_MAX_S = 60
# a TLS handshake record of 512 bytes, announced, then its body one byte at a time
DRIP_HEAD = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"


def main():
    port, count, hold = int(sys.argv[1]), int(sys.argv[2]), min(float(sys.argv[3]), HOLD_MAX_S)
    ready_file, drip = sys.argv[4], len(sys.argv) > 5 and sys.argv[5] == "drip"
    if drip:
        count = 1
    sel = selectors.DefaultSelector()
    opened_at, failed = {}, 0
    for _ in range(count):
        s = socket.socket()
        s.settimeout(2)
        try:
            s.connect(("127.0.0.1", port))
        except OSError:
            failed += 1
            s.close()
            continue
        s.setblocking(False)
        opened_at[s] = time.monotonic()
        sel.register(s, selectors.EVENT_READ)
    with open(ready_file, "w") as f:
        f.write("%d\n" % len(opened_at))

    closed_after = []
    start = time.monotonic()
    drip_bytes, next_drip = DRIP_HEAD, start
    while sel.get_map() and time.monotonic() - start < hold:
        if drip and time.monotonic() >= next_drip and drip_bytes:
            for s in list(opened_at):
                try:
                    s.send(drip_bytes[:1])
                except OSError:
                    pass
            drip_bytes = drip_bytes[1:] if len(drip_bytes) > 1 else b"\x00"
            next_drip += 1.0
        for key, _ in sel.select(timeout=0.1):
            s = key.fileobj
            try:
                data = s.recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if data:
                continue  # e.g. a TLS alert before the close: keep watching for the close
            closed_after.append(time.monotonic() - opened_at[s])
            sel.unregister(s)
            s.close()
    left_open = len(sel.get_map())
    for key in list(sel.get_map().values()):
        key.fileobj.close()
    later = [t for t in closed_after if t >= REFUSED_WITHIN_S]
    print(json.dumps({
        "opened": len(opened_at),
        "failed": failed,
        "refused": len(closed_after) - len(later),
        "closed_later": len(later),
        "left_open": left_open,
        "first_later_s": round(min(later), 2) if later else None,
        "last_later_s": round(max(later), 2) if later else None,
    }))


if __name__ == "__main__":
    main()
