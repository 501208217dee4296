"""An app that speaks only HTTP/2 over cleartext (h2c, prior knowledge), for tests.

Every request is answered 200 with a JSON body saying what the app received
(method, path, the request headers it cares about, body length, request
trailers), and with response trailers: x-app-trailer: done, plus an
x-echo-<name> for each request trailer. Anything that is not an HTTP/2
preface gets the connection closed, so an HTTP/1.1 request fails at once.
usage: h2c_app.py --port PORT
"""
import argparse
import json
import socket
import threading

import h2.config
import h2.connection
import h2.events

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SHOWN = ("te", "seam-orig-proto", "content-type", "x-forwarded-client-cert", "x-forwarded-for", "x-forwarded-proto")


def serve(sock):
    sock.settimeout(60)
    first = b""
    while len(first) < len(PREFACE):
        chunk = sock.recv(len(PREFACE) - len(first))
        if not chunk:
            return
        first += chunk
    if first != PREFACE:
        return  # not HTTP/2: the caller sees the connection closed
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=False))
    conn.initiate_connection()
    conn.receive_data(first)
    sock.sendall(conn.data_to_send())
    streams = {}
    while True:
        data = sock.recv(65536)
        if not data:
            return
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.RequestReceived):
                heads = {k.decode(): v.decode() for k, v in ev.headers}
                streams[ev.stream_id] = {"method": heads.get(":method"), "path": heads.get(":path"),
                                         "headers": {k: heads[k] for k in SHOWN if k in heads},
                                         "body_len": 0, "trailers": {}}
            elif isinstance(ev, h2.events.DataReceived):
                streams[ev.stream_id]["body_len"] += len(ev.data)
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.TrailersReceived):
                streams[ev.stream_id]["trailers"] = {k.decode(): v.decode() for k, v in ev.headers}
            elif isinstance(ev, h2.events.StreamEnded):
                seen = streams.pop(ev.stream_id)
                body = json.dumps(seen).encode()
                conn.send_headers(ev.stream_id, [(":status", "200"), ("content-type", "application/json"),
                                                 ("content-length", str(len(body)))])
                conn.send_data(ev.stream_id, body)
                trailers = [("x-app-trailer", "done")]
                trailers += [("x-echo-" + k, v) for k, v in seen["trailers"].items()]
                conn.send_headers(ev.stream_id, trailers, end_stream=True)
            elif isinstance(ev, h2.events.ConnectionTerminated):
                return
        out = conn.data_to_send()
        if out:
            sock.sendall(out)


def handle(sock):
    try:
        serve(sock)
    except (OSError, h2.exceptions.ProtocolError):
        pass
    finally:
        sock.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args()
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", args.port))
    srv.listen(64)
    while True:
        client, _ = srv.accept()
        threading.Thread(target=handle, args=(client,), daemon=True).start()


if __name__ == "__main__":
    main()
