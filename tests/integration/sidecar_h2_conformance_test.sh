#!/usr/bin/env bash
# The sidecar's HTTP servers against a protocol conformance run (h2_conformance.py): HTTP/2 (RFC
# 7540/9113 framing, stream states, flow control, SETTINGS, HPACK and message rules, modelled on
# h2spec's case list) and HTTP/1.1 (RFC 9112), each on the outbound listener in the clear (h2c with
# prior knowledge) and on the inbound listener over mTLS (ALPN h2 and http/1.1, with a mesh client
# certificate). Afterwards both sidecars still run and serve, and no case left a crash in their logs.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sidecar_lib.sh"
source "$(dirname "$0")/sidecar_outbound_lib.sh"
cd "$WORK" || exit 1
CONFORMANCE=$(dirname "$0")/h2_conformance.py
PY=/usr/bin/python3

start_pair_backend
start_frontend routes.json
OUT=http://127.0.0.1:$OUT_PORT

# run NAME ARGS...: one conformance run; its lines go to the log, its verdict is one check here
run() {
    local name=$1
    shift
    echo "# $name"
    if "$PY" "$CONFORMANCE" "$@" >"$WORK/run.out" 2>&1; then
        sed 's/^/  /' "$WORK/run.out"
        pass "$name: $(tail -1 "$WORK/run.out")"
    else
        sed 's/^/  /' "$WORK/run.out"
        fail "$name" "$(tail -1 "$WORK/run.out")"
    fi
}

run "HTTP/2, outbound listener, h2c" h2 --port "$OUT_PORT" --authority "$BACKEND_HOST"
run "HTTP/2, inbound listener, TLS + ALPN h2" h2 --port "$IN_PORT" --authority "127.0.0.1:$IN_PORT" \
    --tls frontend.pem frontend.key
run "HTTP/1.1, outbound listener" h1 --port "$OUT_PORT" --authority "$BACKEND_HOST"
run "HTTP/1.1, inbound listener, TLS + ALPN http/1.1" h1 --port "$IN_PORT" --authority "127.0.0.1:$IN_PORT" \
    --tls frontend.pem frontend.key

# --- both sidecars survived every case
check "the outbound listener still serves (h2c)" 200 \
    "$(out --http2-prior-knowledge -H "host: $BACKEND_HOST" "$OUT/api/after")"
check "the inbound listener still serves (h2)" 200 \
    "$(mtls frontend --http2 -o /dev/null -w '%{http_code}' "https://127.0.0.1:$IN_PORT/api/after")"
survived "after every case" "$FRONTEND_PID" frontend.err
survived "after every case" "$BACKEND_PID" backend.err

# keep the sidecars' logs of a failed run (bazel puts them in test.outputs)
if [ "$FAILED" -ne 0 ] && [ -n "${TEST_UNDECLARED_OUTPUTS_DIR:-}" ]; then
    cp frontend.log frontend.err backend.log backend.err "$TEST_UNDECLARED_OUTPUTS_DIR/" 2>/dev/null
fi
finish
