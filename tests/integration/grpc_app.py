#!/usr/bin/python3
"""A gRPC app for the sidecar's integration tests: service seam.test.Echo over h2c.

usage: grpc_app.py --port N [--cancel-log FILE]   (listens on 127.0.0.1:N, no TLS)

Generic handlers on raw bytes, so no generated code is needed (Debian's python3-grpcio;
run it with /usr/bin/python3). Methods:
  Unary         echoes the request; trailing metadata x-seen-xfcc (the x-forwarded-client-cert
                it saw, "" when none) and x-seen-orig-proto (seam-orig-proto, "" when none).
  ServerStream  request "N" or "N,INTERVAL_MS": N replies "msg-0".."msg-(N-1)".
  ClientStream  one reply "count=C bytes=B sha256=HEX" over everything it received.
  Bidi          echoes each message as it arrives.
  Fail          request "CODE:message": fails with that status and message, after setting the
                trailers x-custom-trailer: v1 and x-bin-bin: 00 01 02.
  Sleep         request "MS": answers "slept MS" after MS milliseconds; when the call ends early
                (deadline or cancel) appends "cancelled /seam.test.Echo/Sleep" to --cancel-log.
  Secret        answers "secret": only a sidecar's policy keeps callers from it.
Messages up to 8 MB each way. Exits on SIGTERM or SIGINT.
"""
import argparse
import concurrent.futures
import hashlib
import signal
import sys
import threading
import time

import grpc

SERVICE = "seam.test.Echo"
MAX_MESSAGE = 8 * 1024 * 1024
WORKERS = 32  # each streaming call holds a thread for its whole life


def _raw(data):
    """Messages are raw bytes on both sides: the serializer passes them through."""
    return data


def _metadata_value(context, key):
    """The values the caller sent under KEY, joined with ", " (so a duplicate shows); "" when none."""
    return ", ".join(v for k, v in context.invocation_metadata() if k == key)


class Echo:
    def __init__(self, cancel_log):
        self.cancel_log = cancel_log
        self.cancel_lock = threading.Lock()

    def unary(self, request, context):
        context.set_trailing_metadata((
            ("x-seen-xfcc", _metadata_value(context, "x-forwarded-client-cert")),
            ("x-seen-orig-proto", _metadata_value(context, "seam-orig-proto")),
        ))
        return request

    def server_stream(self, request, context):
        count, _, interval_ms = request.decode("ascii").partition(",")
        interval = int(interval_ms or 0) / 1000.0
        for i in range(int(count)):
            if i and interval:
                time.sleep(interval)
            yield b"msg-%d" % i

    def client_stream(self, request_iterator, context):
        digest, count, total = hashlib.sha256(), 0, 0
        for message in request_iterator:
            digest.update(message)
            count += 1
            total += len(message)
        return b"count=%d bytes=%d sha256=%s" % (count, total, digest.hexdigest().encode())

    def bidi(self, request_iterator, context):
        for message in request_iterator:
            yield message

    def fail(self, request, context):
        code, _, message = request.decode("utf-8").partition(":")
        context.set_trailing_metadata((("x-custom-trailer", "v1"), ("x-bin-bin", b"\x00\x01\x02")))
        context.abort(grpc.StatusCode[code], message)

    def sleep(self, request, context):
        ms = int(request.decode("ascii"))
        end = time.monotonic() + ms / 1000.0
        while time.monotonic() < end:
            if not context.is_active():
                self._log_cancel("/%s/Sleep" % SERVICE)
                return b""
            time.sleep(0.02)
        return b"slept %d" % ms

    def secret(self, request, context):
        return b"secret"

    def _log_cancel(self, method):
        if not self.cancel_log:
            return
        with self.cancel_lock, open(self.cancel_log, "a") as log:
            log.write("cancelled %s\n" % method)


def main():
    parser = argparse.ArgumentParser(description="seam.test.Echo over h2c on 127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cancel-log", default="")
    args = parser.parse_args()

    echo = Echo(args.cancel_log)

    def unary(fn):
        return grpc.unary_unary_rpc_method_handler(fn, request_deserializer=_raw, response_serializer=_raw)

    handlers = {
        "Unary": unary(echo.unary),
        "ServerStream": grpc.unary_stream_rpc_method_handler(
            echo.server_stream, request_deserializer=_raw, response_serializer=_raw),
        "ClientStream": grpc.stream_unary_rpc_method_handler(
            echo.client_stream, request_deserializer=_raw, response_serializer=_raw),
        "Bidi": grpc.stream_stream_rpc_method_handler(echo.bidi, request_deserializer=_raw, response_serializer=_raw),
        "Fail": unary(echo.fail),
        "Sleep": unary(echo.sleep),
        "Secret": unary(echo.secret),
    }
    server = grpc.server(
        concurrent.futures.ThreadPoolExecutor(max_workers=WORKERS),
        handlers=[grpc.method_handlers_generic_handler(SERVICE, handlers)],
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE),
            ("grpc.max_send_message_length", MAX_MESSAGE),
        ],
        maximum_concurrent_rpcs=WORKERS,
    )
    if server.add_insecure_port("127.0.0.1:%d" % args.port) == 0:
        print("grpc_app: cannot listen on 127.0.0.1:%d" % args.port, file=sys.stderr)
        return 1
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server.start()
    while not stop.wait(1.0):
        pass
    server.stop(grace=None).wait(5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
