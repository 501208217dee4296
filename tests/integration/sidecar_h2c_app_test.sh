#!/usr/bin/env bash
# An app that speaks only h2c behind a sidecar pair: an HTTP/2 client's request reaches it over h2c
# (no marker, x-forwarded-* set); with --app-protocol h2c an HTTP/1.1 client's chunked body and its
# trailer section reach it as HTTP/2 DATA and trailing HEADERS, and the app's trailers come back to
# that client as a chunked trailer section. With --app-protocol auto the same HTTP/1.1 request is
# kept HTTP/1.1 to the app, which an h2c-only app refuses: a 502 that says so.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sidecar_lib.sh"
source "$(dirname "$0")/sidecar_outbound_lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$WORK" || exit 1
PY=/usr/bin/python3 # the system one has the h2 package

make_pair_certs
APP_PORT=$(free_port)
start_bg h2c-app "$PY" "$HERE/h2c_app.py" --port "$APP_PORT"
wait_port "$APP_PORT" 10
cat >policy.json <<EOF
{"mode": "enforce", "default": "deny", "rules": [{"name": "frontend-api", "from": ["$CLIENT_ID"], "paths": ["/api/*"]}]}
EOF
# two backends in front of the one app: "auto" (the default) and "h2c"
AUTO_PORT=$(free_port)
ADMIN_PORT=$(free_port)
start_sidecar backend-auto --inbound "127.0.0.1:$AUTO_PORT" --app "127.0.0.1:$APP_PORT" --policy policy.json
H2C_PORT=$(free_port)
ADMIN_PORT=$(free_port)
start_sidecar backend-h2c --inbound "127.0.0.1:$H2C_PORT" --app "127.0.0.1:$APP_PORT" --policy policy.json \
    --app-protocol h2c
wait_port "$AUTO_PORT" 10
wait_port "$H2C_PORT" 10
cat >routes.json <<EOF
{"routes": [{"host": "auto.default.svc", "upstream": "127.0.0.1:$AUTO_PORT", "identity": "$SERVER_ID"},
            {"host": "h2c.default.svc", "upstream": "127.0.0.1:$H2C_PORT", "identity": "$SERVER_ID"}]}
EOF
start_frontend routes.json

# field JSON EXPR: one value out of a JSON text (a python expression over j).
field() {
    "$PY" -c 'import json,sys; j=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2" 2>/dev/null
}

# --- an HTTP/2 client, auto: the app gets h2c, unmarked, with the forwarding headers of a proxy hop
check "h2 client -> auto backend -> h2c app: 200" 200 \
    "$(out --http2-prior-knowledge -H 'host: auto.default.svc' -d 'twelve bytes' "http://127.0.0.1:$OUT_PORT/api/h2")"
seen=$(cat body)
check "the app got the body" 12 "$(field "$seen" 'j["body_len"]')"
check "no seam-orig-proto reached the app" None "$(field "$seen" 'j["headers"].get("seam-orig-proto")')"
check_contains "the app saw the caller's identity" "URI=$CLIENT_ID" "$(field "$seen" 'j["headers"].get("x-forwarded-client-cert")')"
check "x-forwarded-proto https" https "$(field "$seen" 'j["headers"].get("x-forwarded-proto")')"
check "x-forwarded-for names the mesh peer" 127.0.0.1 "$(field "$seen" 'j["headers"].get("x-forwarded-for")')"

# --- an HTTP/1.1 client with chunked trailers, h2c backend: trailers both ways
res=$("$PY" "$HERE/h1_trailers_client.py" "$OUT_PORT" h2c.default.svc /api/trailers 2>h1client.err)
check "h1 client -> h2c backend: 200" "HTTP/1.1 200 OK" "$(field "$res" 'j["status"]')"
body=$(field "$res" 'j["body"]')
check "the app got the 11 body bytes" 11 "$(field "$body" 'j["body_len"]')"
check "the app got the client's trailer as HTTP/2 trailers" abc123 "$(field "$body" 'j["trailers"].get("x-checksum")')"
check "te: trailers reached the app" trailers "$(field "$body" 'j["headers"].get("te")')"
check "no seam-orig-proto reached the app" None "$(field "$body" 'j["headers"].get("seam-orig-proto")')"
check "the app's trailer came back in the chunked trailer section" done "$(field "$res" 'j["trailers"].get("x-app-trailer")')"
check "... and the echo of the client's trailer" abc123 "$(field "$res" 'j["trailers"].get("x-echo-x-checksum")')"
check_contains "the frontend logged app_protocol http/1.1" '"app_protocol":"http/1.1"' \
    "$(grep -F '"path":"/api/trailers"' frontend.log | tail -1)"

# --- the same HTTP/1.1 request, auto backend: kept HTTP/1.1, which this app cannot speak
res=$("$PY" "$HERE/h1_trailers_client.py" "$OUT_PORT" auto.default.svc /api/trailers-auto 2>>h1client.err)
check "h1 client -> auto backend -> h2c-only app: 502" "HTTP/1.1 502 Bad Gateway" "$(field "$res" 'j["status"]')"

if [ "$FAILED" -ne 0 ] && [ -n "${TEST_UNDECLARED_OUTPUTS_DIR:-}" ]; then
    cp frontend.log frontend.err backend-*.log backend-*.err h2c-app.log h1client.err "$TEST_UNDECLARED_OUTPUTS_DIR/" 2>/dev/null
fi
finish
