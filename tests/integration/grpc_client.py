#!/usr/bin/python3
"""A gRPC client for the sidecar's integration tests: runs one scenario against seam.test.Echo.

usage: grpc_client.py SCENARIO --target HOST:PORT [--authority NAME] [options]

Plain h2c (no TLS). --authority sets :authority (grpc.default_authority), which is how an
outbound sidecar picks the route. Scenarios:
  unary           binary payload echoed; reports the x-seen-xfcc and x-seen-orig-proto trailers
  server_stream   --count messages (1000) in order
  client_stream   200 messages of assorted sizes (one empty); the app's count, size and SHA-256 match
  bidi            50 rounds of send one, read its echo
  fail            FAILED_PRECONDITION with its message, x-custom-trailer and the binary x-bin-bin trailer
  big             4 MB each way through Unary, SHA-256 compared
  deadline        Sleep 3000 ms under a 0.5 s deadline: DEADLINE_EXCEEDED
  denied          Secret: PERMISSION_DENIED, details containing --expect-details
  unimplemented   Unary: UNIMPLEMENTED, details containing --expect-details
  long_bidi       one Bidi call open --seconds (60), a message every --every (5) seconds, each echoed
Prints one line, "ok SCENARIO DETAIL" (exit 0) or "FAIL SCENARIO WHY" (exit 1). Every call has a
deadline, and a watchdog ends the process if the scenario as a whole overruns.
Uses Debian's python3-grpcio: run it with /usr/bin/python3.
"""
import argparse
import hashlib
import os
import queue
import random
import sys
import threading
import time

import grpc

SERVICE = "/seam.test.Echo/"
MAX_MESSAGE = 8 * 1024 * 1024
BIG = 4 * 1024 * 1024
BIDI_ROUNDS = 50


class Failed(Exception):
    """A scenario's expectation did not hold; the message says which."""


def expect(cond, why):
    if not cond:
        raise Failed(why)


def rpc_error(err):
    """One line naming a gRPC error's status and message."""
    return "code=%s details=[%s]" % (err.code().name, err.details())


def trailers(call):
    """A call's trailing metadata as a dict (the last value wins)."""
    return {k: v for k, v in (call.trailing_metadata() or ())}


class Requests:
    """A request stream fed one message at a time, so a test can wait for each echo before the
    next send. close() ends the stream; abandon() ends it too when the test gives up."""

    def __init__(self):
        self.pending = queue.Queue()
        self.gone = threading.Event()

    def __iter__(self):
        while not self.gone.is_set():
            try:
                message = self.pending.get(timeout=0.1)
            except queue.Empty:
                continue
            if message is None:
                return
            yield message

    def send(self, message):
        self.pending.put(message)

    def close(self):
        self.pending.put(None)

    def abandon(self):
        self.gone.set()


def echo_rounds(channel, messages, timeout, every=0.0):
    """One Bidi call: sends each message, waits for its echo, then (when EVERY is set) waits EVERY
    seconds before the next; closes the stream and checks the call ends OK. Returns the count."""
    requests = Requests()
    call = channel.stream_stream(SERVICE + "Bidi")(iter(requests), timeout=timeout)
    try:
        for i, message in enumerate(messages):
            if i and every:
                time.sleep(every)
            requests.send(message)
            echoed = next(call, None)
            expect(echoed is not None, "stream ended after %d echoes" % i)
            expect(echoed == message, "echo %d differs: sent %r, got %r" % (i, message[:40], echoed[:40]))
        requests.close()
        expect(next(call, None) is None, "a reply after the last echo")
        expect(call.code() == grpc.StatusCode.OK, "the call ended with %s" % call.code())
        return len(messages)
    finally:
        requests.abandon()


def run_unary(channel, args):
    payload = b"hello seam " + bytes(range(256))
    reply, call = channel.unary_unary(SERVICE + "Unary").with_call(payload, timeout=args.timeout)
    expect(reply == payload, "echo differs: %d bytes back for %d" % (len(reply), len(payload)))
    seen = trailers(call)
    return "echoed=%d xfcc=[%s] orig_proto=[%s]" % (
        len(reply), seen.get("x-seen-xfcc", ""), seen.get("x-seen-orig-proto", ""))


def run_server_stream(channel, args):
    call = channel.unary_stream(SERVICE + "ServerStream")(b"%d" % args.count, timeout=args.timeout)
    got = 0
    for message in call:
        expect(message == b"msg-%d" % got, "message %d is %r" % (got, message[:40]))
        got += 1
    expect(got == args.count, "%d messages of %d" % (got, args.count))
    expect(call.code() == grpc.StatusCode.OK, "the call ended with %s" % call.code())
    return "%d messages" % got


def run_client_stream(channel, args):
    rng = random.Random(7)
    messages = [b""] + [rng.randbytes(rng.choice((1, 100, 5000, 70000))) for _ in range(199)]
    digest = hashlib.sha256(b"".join(messages)).hexdigest()
    want = b"count=%d bytes=%d sha256=%s" % (len(messages), sum(map(len, messages)), digest.encode())
    reply = channel.stream_unary(SERVICE + "ClientStream")(iter(messages), timeout=args.timeout)
    expect(reply == want, "the app counted %r, sent %r" % (reply, want))
    return reply.decode()


def run_bidi(channel, args):
    rounds = echo_rounds(channel, [b"round-%d-" % i + b"x" * (i * 97) for i in range(BIDI_ROUNDS)], args.timeout)
    return "%d rounds interleaved" % rounds


def run_fail(channel, args):
    try:
        channel.unary_unary(SERVICE + "Fail")(b"FAILED_PRECONDITION:nope, 100% not today", timeout=args.timeout)
    except grpc.RpcError as err:
        expect(err.code() == grpc.StatusCode.FAILED_PRECONDITION, rpc_error(err))
        expect(err.details() == "nope, 100% not today", "details [%s]" % err.details())
        seen = trailers(err)
        expect(seen.get("x-custom-trailer") == "v1", "x-custom-trailer is %r" % seen.get("x-custom-trailer"))
        expect(seen.get("x-bin-bin") == b"\x00\x01\x02", "x-bin-bin is %r" % seen.get("x-bin-bin"))
        return "%s [%s] x-custom-trailer=v1 x-bin-bin=000102" % (err.code().name, err.details())
    raise Failed("the call succeeded")


def run_big(channel, args):
    payload = os.urandom(BIG)
    reply = channel.unary_unary(SERVICE + "Unary")(payload, timeout=args.timeout)
    sent, got = hashlib.sha256(payload).hexdigest(), hashlib.sha256(reply).hexdigest()
    expect(sent == got, "%d bytes back, sha256 %s, sent %s" % (len(reply), got, sent))
    return "sent=%d received=%d sha256=%s" % (len(payload), len(reply), got[:16])


def run_deadline(channel, args):
    start = time.monotonic()
    try:
        channel.unary_unary(SERVICE + "Sleep")(b"3000", timeout=0.5)
    except grpc.RpcError as err:
        took = time.monotonic() - start
        expect(err.code() == grpc.StatusCode.DEADLINE_EXCEEDED, rpc_error(err))
        expect(took < 2.5, "the deadline took %.2fs" % took)
        return "DEADLINE_EXCEEDED after %.2fs" % took
    raise Failed("the call succeeded")


def expect_status(channel, args, method, code):
    try:
        reply = channel.unary_unary(SERVICE + method)(b"who goes there", timeout=args.timeout)
    except grpc.RpcError as err:
        expect(err.code() == code, rpc_error(err))
        expect(args.expect_details in (err.details() or ""),
               "details [%s] lack [%s]" % (err.details(), args.expect_details))
        return "%s details=[%s]" % (err.code().name, err.details())
    raise Failed("the call succeeded: %r" % reply[:40])


def run_denied(channel, args):
    return expect_status(channel, args, "Secret", grpc.StatusCode.PERMISSION_DENIED)


def run_unimplemented(channel, args):
    return expect_status(channel, args, "Unary", grpc.StatusCode.UNIMPLEMENTED)


def run_long_bidi(channel, args):
    count = int(args.seconds // args.every) + 1
    start = time.monotonic()
    echo_rounds(channel, [b"tick-%d" % i for i in range(count)], args.seconds + args.timeout, args.every)
    return "%d messages over %.1fs" % (count, time.monotonic() - start)


SCENARIOS = {
    "unary": run_unary,
    "server_stream": run_server_stream,
    "client_stream": run_client_stream,
    "bidi": run_bidi,
    "fail": run_fail,
    "big": run_big,
    "deadline": run_deadline,
    "denied": run_denied,
    "unimplemented": run_unimplemented,
    "long_bidi": run_long_bidi,
}


def main():
    parser = argparse.ArgumentParser(description="one seam.test.Echo scenario over h2c")
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--target", required=True, help="HOST:PORT")
    parser.add_argument("--authority", default="", help=":authority to send (default: the target)")
    parser.add_argument("--timeout", type=float, default=30.0, help="deadline of each call, seconds")
    parser.add_argument("--count", type=int, default=1000, help="server_stream: messages")
    parser.add_argument("--seconds", type=float, default=60.0, help="long_bidi: how long the call stays open")
    parser.add_argument("--every", type=float, default=5.0, help="long_bidi: seconds between messages")
    parser.add_argument("--expect-details", default="", help="denied, unimplemented: a substring of the details")
    args = parser.parse_args()

    # The whole scenario is bounded even if grpc itself wedges: print why, and leave at once.
    limit = args.timeout + (args.seconds if args.scenario == "long_bidi" else 0) + 15

    def overrun():
        print("FAIL %s no result after %.0fs" % (args.scenario, limit), flush=True)
        os._exit(1)

    watchdog = threading.Timer(limit, overrun)
    watchdog.daemon = True
    watchdog.start()

    options = [
        ("grpc.max_receive_message_length", MAX_MESSAGE),
        ("grpc.max_send_message_length", MAX_MESSAGE),
        ("grpc.enable_http_proxy", 0),  # straight to the target, whatever the environment says
        ("grpc.enable_retries", 0),  # one call is one attempt: nothing hides a failure
    ]
    if args.authority:
        options.append(("grpc.default_authority", args.authority))
    try:
        with grpc.insecure_channel(args.target, options=options) as channel:
            detail = SCENARIOS[args.scenario](channel, args)
    except Failed as why:
        print("FAIL %s %s" % (args.scenario, why), flush=True)
        return 1
    except grpc.RpcError as err:
        print("FAIL %s %s" % (args.scenario, rpc_error(err)), flush=True)
        return 1
    watchdog.cancel()
    print("ok %s %s" % (args.scenario, detail), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
