#!/usr/bin/env bash
# gRPC end to end: grpc_client.py -> (h2c) outbound sidecar -> (h2 mTLS) -> inbound sidecar -> (h2c)
# grpc_app.py, all on 127.0.0.1. Unary with the caller's identity in x-forwarded-client-cert, the
# three streaming shapes, a failure whose status, message and custom and binary trailers reach the
# client, 4 MB each way, a deadline the app sees as a cancel, policy denial and a missing route as
# gRPC statuses (with grpc_status in the access log), and a bidi call that outlives
# --upstream-timeout. SEAM_GRPC_LONG_SECONDS sets how long that call stays open (default 60).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sidecar_lib.sh"
source "$(dirname "$0")/sidecar_outbound_lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$WORK" || exit 1

# Debian's python3-grpcio is visible to the system interpreter, not necessarily to a python3 on PATH.
PY=/usr/bin/python3
GRPC_APP=$HERE/grpc_app.py
GRPC_CLIENT=$HERE/grpc_client.py
LONG_SECONDS=${SEAM_GRPC_LONG_SECONDS:-60}
SERVICE=/seam.test.Echo

if ! "$PY" -c 'import grpc' 2>/dev/null; then
    fail "python3-grpcio is installed" "$PY cannot import grpc (apt-get install python3-grpcio)"
    finish
fi

# The app, and the backend's sidecar whose policy lists the methods the frontend may call: Secret,
# which the app does serve, is left to the default deny.
make_pair_certs
APP_PORT=$(free_port)
IN_PORT=$(free_port)
IN_ADMIN=$(free_port)
start_bg grpc-app "$PY" "$GRPC_APP" --port "$APP_PORT" --cancel-log "$WORK/cancel.log"
wait_port "$APP_PORT" 10
cat >policy.json <<EOF
{"mode": "enforce", "default": "deny",
 "rules": [{"name": "frontend-echo", "from": ["$CLIENT_ID"],
            "paths": ["$SERVICE/Unary", "$SERVICE/ServerStream", "$SERVICE/ClientStream",
                      "$SERVICE/Bidi", "$SERVICE/Fail", "$SERVICE/Sleep"]}]}
EOF
ADMIN_PORT=$IN_ADMIN
# both sides time out upstreams after 10 s: the long bidi call below must not be cut by that
start_sidecar backend --inbound "127.0.0.1:$IN_PORT" --app "127.0.0.1:$APP_PORT" --policy policy.json \
    --upstream-timeout 10s
wait_port "$IN_PORT" 10
backend_routes >routes.json
start_frontend routes.json --upstream-timeout 10s

# grpc SCENARIO [ARGS...]: runs one client scenario against the frontend's outbound listener with
# :authority BACKEND_HOST (ARGS may override it); prints the client's verdict line.
grpc() {
    local scenario=$1
    shift
    "$PY" "$GRPC_CLIENT" "$scenario" --target "127.0.0.1:$OUT_PORT" --authority "$BACKEND_HOST" "$@" \
        2>>grpc_client.err | tail -1
}

# expect_ok NAME SCENARIO [ARGS...]: passes when the scenario says "ok"; its line is left in RESULT
# (empty when it failed, so no later check can pass on the words of a failure).
expect_ok() {
    local name=$1 scenario=$2
    shift 2
    RESULT=$(grpc "$scenario" "$@")
    check_match "$name" "^ok $scenario " "$RESULT"
    [[ $RESULT == "ok $scenario "* ]] || RESULT=
}

# access_line AUTHORITY PATH: the frontend's access-log line for the call, waiting up to 5 s for it.
access_line() {
    local i line
    for ((i = 0; i < 50; i++)); do
        line=$(grep -F "\"authority\":\"$1\"" frontend.log | grep -F "\"path\":\"$2\"" | tail -1)
        [ -n "$line" ] && break
        sleep 0.1
    done
    echo "$line"
}

# --- calls the app answers
expect_ok "unary: echoed through the pair" unary
check_contains "unary: the app saw the frontend's identity in x-forwarded-client-cert" "URI=$CLIENT_ID" "$RESULT"
check_contains "unary: no seam-orig-proto reaches a gRPC app" "orig_proto=[]" "$RESULT"
expect_ok "server streaming: 1000 messages in order" server_stream --count 1000
expect_ok "client streaming: the app counted every message and byte" client_stream
expect_ok "bidi: 50 interleaved rounds" bidi
expect_ok "an error status, its message and custom + binary trailers reach the client" fail
expect_ok "4 MB each way, SHA-256 equal" big

# --- the deadline: the client gives up after 0.5 s and the app sees its call end
expect_ok "deadline: DEADLINE_EXCEEDED" deadline
for ((i = 0; i < 50; i++)); do
    grep -q "cancelled $SERVICE/Sleep" cancel.log 2>/dev/null && break
    sleep 0.1
done
check_contains "deadline: within 5 s the app saw its Sleep call cancelled" "cancelled $SERVICE/Sleep" \
    "$(cat cancel.log 2>/dev/null)"

# --- replies the sidecars make themselves are gRPC statuses
expect_ok "policy denial: PERMISSION_DENIED, the details name the frontend" denied --expect-details "$CLIENT_ID"
check_contains "the backend denied Secret by its default" '"decision":"deny"' \
    "$(grep -F "\"path\":\"$SERVICE/Secret\"" backend.log | tail -1)"
check_match "access log: grpc_status 7 for the denied call" '"grpc_status":"?7"?[,}]' \
    "$(access_line "$BACKEND_HOST" "$SERVICE/Secret")"
expect_ok "no route: UNIMPLEMENTED, the details name the host" unimplemented --authority nowhere.svc --expect-details nowhere.svc
check_match "access log: grpc_status 12 for the unrouted call" '"grpc_status":"?12"?[,}]' \
    "$(access_line nowhere.svc "$SERVICE/Unary")"

# --- a call that lives longer than --upstream-timeout, kept busy more often than any idle timeout
expect_ok "bidi open ${LONG_SECONDS}s (upstream timeout 10 s), a message every 5 s, all echoed" long_bidi \
    --seconds "$LONG_SECONDS" --every 5

expect_ok "the pair still serves afterwards" unary
if "$PY" -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1]) if l.strip()]' frontend.log; then
    pass "every access-log line is JSON"
else
    fail "every access-log line is JSON"
fi

# keep the logs of a failed run (bazel puts them in test.outputs)
if [ "$FAILED" -ne 0 ] && [ -n "${TEST_UNDECLARED_OUTPUTS_DIR:-}" ]; then
    cp frontend.log frontend.err backend.log backend.err grpc-app.log grpc_client.err "$TEST_UNDECLARED_OUTPUTS_DIR/" \
        2>/dev/null
fi
finish
