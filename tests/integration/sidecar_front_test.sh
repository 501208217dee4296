#!/usr/bin/env bash
# seam-sidecar's own HTTP/1.1 server (sidecar/front.c) on the outbound listener, fed raw bytes:
# every malformed or refused request head gets its exact status and the connection closes
# (400, 431, 417, 413), a broken chunked body closes the connection, pipelined requests are answered
# in order, HTTP/1.0 and "Connection: close" close after the response, "Expect: 100-continue" gets
# "100 Continue" first, a chunked body with trailers arrives whole, a half-closed client gets its
# answer; over h2c (raw frames) a content-length above the 1 GiB limit gets 413, a body followed by
# trailers arrives whole and a body that stays silent is reset after 30 s; clients that reset their connection (plain and mTLS, mid-request or
# idle) are released at once. After each case the sidecar is still running with no crash in its log, and
# afterwards it still serves.
# shellcheck disable=SC2059 # the raw requests' printf formats carry the Host line ($H) on purpose
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sidecar_lib.sh"
source "$(dirname "$0")/sidecar_outbound_lib.sh"
cd "$WORK" || exit 1

start_pair_backend
# a long upstream timeout: the stalled-body case below must meet the front end's own 30 s timer
start_frontend routes.json --upstream-timeout 60s
OUT=http://127.0.0.1:$OUT_PORT
check "a normal request before the raw ones: 200" 200 "$(out -H "host: $BACKEND_HOST" "$OUT/api/before")"

# A raw HTTP client: connects to the outbound listener, writes the first file, and with --continue
# waits (at most 5 s) for the end of an interim response head before writing the rest; writes what
# comes back to $WORK/resp and prints how the connection ended: "closed" (the server closed it),
# "reset" (it was reset) or "open" (still open after 3 s of silence, or 15 s in all).
cat >raw.py <<'EOF'
import socket, sys, time
port, out, cont, files = int(sys.argv[1]), sys.argv[2], sys.argv[3] == "1", sys.argv[4:]
parts = [open(f, "rb").read() for f in files]
s = socket.create_connection(("127.0.0.1", port), timeout=5)
got, state = b"", "open"

def receive(wait):
    global got, state
    s.settimeout(wait)
    try:
        data = s.recv(65536)
    except socket.timeout:
        return False
    except ConnectionResetError:
        state = "reset"
        return False
    if not data:
        state = "closed"
        return False
    got += data
    return True

try:
    for i, part in enumerate(parts):
        if i > 0 and cont:
            deadline = time.monotonic() + 5
            while b"\r\n\r\n" not in got and time.monotonic() < deadline and receive(1):
                pass
        s.sendall(part)
except (BrokenPipeError, ConnectionResetError):
    pass  # the server stopped reading: its answer may still be there to read
deadline = time.monotonic() + 15
while state == "open" and time.monotonic() < deadline and receive(3):
    pass
open(out, "wb").write(got)
print(state)
EOF
raw() { # raw [--continue] FILE...
    local cont=0
    [ "$1" = --continue ] && cont=1 && shift
    python3 raw.py "$OUT_PORT" "$WORK/resp" "$cont" "$@"
}
status_line() { # the first line of the last raw response
    head -1 resp | tr -d '\r'
}
# refused NAME STATUS-LINE FILE: FILE's request is answered with STATUS-LINE and the connection
# closes cleanly (the front end reads out what the client still sends before it closes, so the
# kernel has no unread bytes to answer with a reset that could destroy the answer).
refused() {
    local state
    state=$(raw "$3")
    check "$1: $2, then close" "$2|closed" "$(status_line)|$state"
    survived "$1" "$FRONTEND_PID" frontend.err
}
H="Host: $BACKEND_HOST\r\n"

# --- refusals: the front end answers by itself and closes
printf 'this is garbage\r\n\r\n' >garbage.req
refused "a garbage request line" "HTTP/1.1 400 Bad Request" garbage.req
printf "POST /api/te-cl HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n" >te-cl.req
refused "transfer-encoding chunked and content-length" "HTTP/1.1 400 Bad Request" te-cl.req
printf "POST /api/gzip HTTP/1.1\r\n${H}Transfer-Encoding: gzip\r\n\r\n" >te-gzip.req
refused "transfer-encoding gzip" "HTTP/1.1 400 Bad Request" te-gzip.req
printf "GET /api/fold HTTP/1.1\r\n${H}X-Folded: one\r\n two\r\n\r\n" >fold.req
refused "obsolete line folding" "HTTP/1.1 400 Bad Request" fold.req
{
    printf "GET /api/big HTTP/1.1\r\n${H}X-Big: "
    head -c 70000 /dev/zero | tr '\0' a
    printf '\r\n\r\n'
} >big-header.req
refused "a 70 KB header value" "HTTP/1.1 431 Request Header Fields Too Large" big-header.req
{
    printf "GET /api/many HTTP/1.1\r\n${H}"
    for ((i = 0; i < 200; i++)); do printf 'X-H%d: %d\r\n' "$i" "$i"; done
    printf '\r\n'
} >many-headers.req
refused "200 header lines" "HTTP/1.1 431 Request Header Fields Too Large" many-headers.req
printf "POST /api/expect HTTP/1.1\r\n${H}Expect: something-else\r\nContent-Length: 5\r\n\r\nhello" >expect.req
refused "Expect: something-else" "HTTP/1.1 417 Expectation Failed" expect.req
printf "POST /api/huge HTTP/1.1\r\n${H}Content-Length: 2000000000\r\n\r\n" >huge.req
refused "content-length 2000000000 (above 1 GiB)" "HTTP/1.1 413 Payload Too Large" huge.req

# --- a broken chunked body after a valid head to a routed host: the connection closes, no answer
printf "POST /api/broken HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\nzz\r\n" >broken.req
state=$(raw broken.req)
check "a broken chunked body: the connection closes without a 200" "closed|no 200" \
    "$state|$(grep -q 'HTTP/1.1 200' resp && echo 200 || echo no 200)"
survived "a broken chunked body" "$FRONTEND_PID" frontend.err

# --- pipelining: two requests in one write, two answers in order on the same connection
printf "GET /api/p1 HTTP/1.1\r\n${H}\r\nGET /api/p2 HTTP/1.1\r\n${H}\r\n" >pipelined.req
state=$(raw pipelined.req)
check "two pipelined requests: two 200s in order from the app, the connection stays open" \
    'HTTP/1.1 200 OK|"path": "/api/p1"|HTTP/1.1 200 OK|"path": "/api/p2"|open' \
    "$(tr -d '\r' <resp | grep -oE '^HTTP/1\.1 [0-9]{3} .*|"path": "[^"]*"' | paste -sd '|')|$state"
survived "two pipelined requests" "$FRONTEND_PID" frontend.err

# --- connection handling: HTTP/1.0 and Connection: close end the connection after the response
printf "GET /api/h10 HTTP/1.0\r\n${H}\r\n" >http10.req
state=$(raw http10.req)
check "HTTP/1.0 without keep-alive: 200, then close" 'HTTP/1.1 200 OK|"path": "/api/h10"|closed' \
    "$(status_line)|$(grep -o '"path": "[^"]*"' resp)|$state"
printf "GET /api/close HTTP/1.1\r\n${H}Connection: close\r\n\r\n" >close.req
state=$(raw close.req)
check "HTTP/1.1 Connection: close: 200 saying connection: close, then close" \
    "HTTP/1.1 200 OK|connection: close|closed" \
    "$(status_line)|$(tr -d '\r' <resp | grep -ix 'connection: close')|$state"
survived "connection handling" "$FRONTEND_PID" frontend.err

# --- Expect: 100-continue: the interim response comes before the body is sent, then the answer
printf "POST /api/continue HTTP/1.1\r\n${H}Expect: 100-continue\r\nContent-Length: 11\r\nConnection: close\r\n\r\n" \
    >continue-head.req
printf 'hello world' >continue-body.req
state=$(raw --continue continue-head.req continue-body.req)
check "Expect: 100-continue: 100 Continue, then 200 with the whole body at the app, then close" \
    'HTTP/1.1 100 Continue|HTTP/1.1 200 OK|"body_length": 11|closed' \
    "$(tr -d '\r' <resp | grep -oE '^HTTP/1\.1 [0-9]{3} .*|"body_length": [0-9]+' | paste -sd '|')|$state"
survived "Expect: 100-continue" "$FRONTEND_PID" frontend.err
# the same with a 10 KB head: the buffer that held it is freed once the head is taken, and the
# expectation must have been read before that (ASan caught a read after the free here)
{
    printf "POST /api/continue-big HTTP/1.1\r\n${H}X-Pad: "
    head -c 10000 /dev/zero | tr '\0' p
    printf '\r\nExpect: 100-continue\r\nContent-Length: 11\r\nConnection: close\r\n\r\n'
} >continue-big.req
state=$(raw --continue continue-big.req continue-body.req)
check "Expect: 100-continue after a 10 KB head: 100 Continue, then 200 with the whole body" \
    'HTTP/1.1 100 Continue|HTTP/1.1 200 OK|"body_length": 11|closed' \
    "$(tr -d '\r' <resp | grep -oE '^HTTP/1\.1 [0-9]{3} .*|"body_length": [0-9]+' | paste -sd '|')|$state"
survived "Expect: 100-continue after a 10 KB head" "$FRONTEND_PID" frontend.err

# --- a chunked upload with a trailer section; the trailer is consumed, so a request after it is read
# as the next request on the same connection
printf "POST /api/trailer HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\nx-trailer: 1\r\n\r\n" \
    >trailer.req
printf "GET /api/after-trailer HTTP/1.1\r\n${H}Connection: close\r\n\r\n" >>trailer.req
SHA=$(printf 'hello world' | sha256sum | cut -d' ' -f1)
state=$(raw trailer.req)
check "a chunked upload with a trailer: 200, the app got every byte" \
    "HTTP/1.1 200 OK|\"body_length\": 11|\"body_sha256\": \"$SHA\"" \
    "$(status_line)|$(grep -m1 -o '"body_length": [0-9]*' resp)|$(grep -m1 -o '"body_sha256": "[0-9a-f]*"' resp)"
check "the request after the trailer: 200, then close" 'HTTP/1.1 200 OK|"path": "/api/after-trailer"|closed' \
    "$(tr -d '\r' <resp | grep -E '^HTTP/1\.1 [0-9]{3} ' | sed -n 2p)|$(grep -o '"path": "/api/after-trailer"' resp)|$state"
survived "a chunked upload with a trailer" "$FRONTEND_PID" frontend.err

# --- h2c (prior knowledge): a declared content-length above 1 GiB gets 413 from the front end itself,
# before any handler (not a refused stream, which a client may send again). A raw client that keeps
# its body open, so that the answer, not a length mismatch, ends the stream; the 413's body text
# (DATA is not compressed) is the front end's own.
cat >h2raw.py <<'EOF'
import socket, struct, sys, time
def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) + payload
def lit(index, value):  # HPACK literal without indexing, name from the static table
    prefix = bytes([index]) if index < 15 else bytes([15, index - 15])
    return prefix + bytes([len(value)]) + value.encode()
mode, port, host, path = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
s = socket.create_connection(("127.0.0.1", port), timeout=60)
block = lit(2, "PUT") + b"\x86" + lit(4, path) + lit(1, host)  # :method :scheme http :path :authority
if mode == "huge":
    block += lit(28, "2000000000")  # content-length
s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0) + frame(1, 0x4, 1, block))  # no END_STREAM
if mode == "trailers":  # a body, then trailers (a literal with a new name) ending the stream
    s.sendall(frame(0, 0, 1, b"hello") + frame(1, 0x5, 1, b"\x00\x0ax-checksum\x03abc"))
start, buf, seen, body = time.monotonic(), b"", [], b""
while time.monotonic() - start < 50:
    data = s.recv(65536)
    if not data:
        print("closed %d" % (time.monotonic() - start)); sys.exit()
    buf += data
    while len(buf) >= 9:
        length = int.from_bytes(buf[:3], "big"); ftype, sid = buf[3], int.from_bytes(buf[5:9], "big") & 0x7fffffff
        if len(buf) < 9 + length:
            break
        flags, payload, buf = buf[4], buf[9:9 + length], buf[9 + length:]
        if sid != 1:
            continue
        if mode == "trailers" and ftype == 0:
            body += payload
            if flags & 1:
                print("complete %s" % (b'"body_length": 5' in body)); sys.exit()
        if mode == "huge" and ftype == 0:
            print("data %s" % payload.decode(errors="replace").strip().replace(" ", "_")); sys.exit()
        if ftype == 3:
            print("rst %d %d" % (int.from_bytes(payload[:4], "big"), time.monotonic() - start)); sys.exit()
        if ftype == 1 and mode == "stall":
            print("headers %d" % (time.monotonic() - start)); sys.exit()
print("nothing")
EOF
check "h2c: content-length 2000000000 is answered by the front end (413's body)" "data payload_too_large" \
    "$(timeout 20 python3 h2raw.py huge "$OUT_PORT" "$BACKEND_HOST" /api/h2-huge 2>&1)"
survived "h2c: content-length above 1 GiB" "$FRONTEND_PID" frontend.err
# trailers end the body (they are not passed on: h2o's request objects cannot carry them)
check "h2c: a body followed by trailers reaches the app whole" "complete True" \
    "$(timeout 20 python3 h2raw.py trailers "$OUT_PORT" "$BACKEND_HOST" /api/h2-trailers 2>&1)"
survived "h2c: trailers" "$FRONTEND_PID" frontend.err

# --- a client that half-closes after its request (shutdown of its sending side) still gets the answer
cat >halfclose.py <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(("GET /api/half-close HTTP/1.0\r\nHost: %s\r\n\r\n" % sys.argv[2]).encode())
s.shutdown(socket.SHUT_WR)
got = b""
while True:
    data = s.recv(65536)
    if not data:
        break
    got += data
print(got.split(b"\r\n")[0].decode(), b'"path": "/api/half-close"' in got)
EOF
check "a half-closed HTTP/1.0 client still gets its answer" "HTTP/1.1 200 OK True" \
    "$(timeout 20 python3 halfclose.py "$OUT_PORT" "$BACKEND_HOST" 2>&1)"
survived "a half-closed client" "$FRONTEND_PID" frontend.err

# --- h2c: a client that opens a body and then sends nothing loses the stream after about 30 s (its
# window was open: it was the slow one), and the stream's hold on the next hop goes with it (h2raw.py
# again: curl would block reading its own stdin and see nothing).
read -r what code_or_secs secs < <(timeout 60 python3 h2raw.py stall "$OUT_PORT" "$BACKEND_HOST" /api/h2-stalled 2>&1)
# the front end's own timer resets the stream (CANCEL = 8); had the next hop's fired first, the
# answer would be a 502 head instead: either way the stream ended instead of waiting
[ "$what" = headers ] && secs=$code_or_secs
check "h2c: a stalled request body ends the stream" "yes" "$([ "$what" = rst ] || [ "$what" = headers ] && echo yes || echo "$what")"
[ "${secs:-0}" -ge 28 ] && [ "${secs:-0}" -le 40 ] && pass "h2c: it ended after about 30 s (${secs} s, $what ${code_or_secs})" ||
    fail "h2c: it ended after about 30 s" "$what $code_or_secs ${secs:-}"
survived "h2c: a stalled request body" "$FRONTEND_PID" frontend.err
check "a request after the stalled one: 200" 200 "$(out -H "host: $BACKEND_HOST" "$OUT/api/after-stall")"

# --- clients that reset their connection (SO_LINGER 0) with a request still at the app: the sidecar
# reads a reset, not EOF, so it must neither wait to answer nor wait to say goodbye over TLS; the
# connection is gone at once (sidecar_reset_client.py)
# settles SERIES-FUNCTION SERIES LIMIT: waits (5 s at most) until the gauge is at most LIMIT; prints it
settles() {
    local i v
    for ((i = 0; i < 50; i++)); do
        v=$("$1" "$2")
        [ "$v" -le "$3" ] && break
        sleep 0.1
    done
    echo "$v"
}
RESET=$(dirname "$0")/sidecar_reset_client.py
OUT_CONNS='seam_connections_active{direction="outbound"}'
IN_CONNS='seam_connections_active{direction="inbound"}'
obase=$(settles ometric "$OUT_CONNS" 0)
ibase=$(imetric "$IN_CONNS")
for i in 1 2 3; do
    python3 "$RESET" 127.0.0.1 "$OUT_PORT" http1 "$BACKEND_HOST" "/slow?ms=1000" >/dev/null
done
check "app connections reset mid-request are released" "$obase" "$(settles ometric "$OUT_CONNS" "$obase")"
for mode in h2-tls http1-tls; do
    for path in "/slow?ms=1000" -; do
        python3 "$RESET" 127.0.0.1 "$IN_PORT" "$mode" 127.0.0.1 "$path" frontend.pem frontend.key >/dev/null
    done
done
v=$(settles imetric "$IN_CONNS" "$ibase")
[ "$v" -le "$ibase" ] && pass "mTLS connections reset mid-request or idle are released ($v, was $ibase)" ||
    fail "mTLS connections reset mid-request or idle are released" "$v open, $ibase before"
check "the outbound listener serves after the resets" 200 "$(out -H "host: $BACKEND_HOST" "$OUT/api/after-reset")"
check "the inbound listener serves after the resets" 200 "$(mtls frontend --http2 -o /dev/null -w '%{http_code}' "https://127.0.0.1:$IN_PORT/api/after-reset")"
survived "clients that reset" "$FRONTEND_PID" frontend.err
survived "clients that reset" "$BACKEND_PID" backend.err

# --- the sidecar survived all of it
check "a normal request after the raw ones: 200" 200 "$(out -H "host: $BACKEND_HOST" "$OUT/api/after")"
check_contains "it reached the app" '"path": "/api/after"' "$(cat body)"
check "h2c after the refused stream: 200" 200 "$(out --http2-prior-knowledge -H "host: $BACKEND_HOST" "$OUT/api/h2-after")"
survived "at the end" "$FRONTEND_PID" frontend.err

# keep the sidecars' logs of a failed run (bazel puts them in test.outputs)
if [ "$FAILED" -ne 0 ] && [ -n "${TEST_UNDECLARED_OUTPUTS_DIR:-}" ]; then
    cp frontend.log frontend.err backend.log backend.err resp curl.err "$TEST_UNDECLARED_OUTPUTS_DIR/" 2>/dev/null
fi
finish
