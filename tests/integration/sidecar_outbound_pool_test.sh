#!/usr/bin/env bash
# seam-sidecar outbound connection reuse: many app connections share a few pooled HTTP/2 mesh
# connections, a new one opens past SETTINGS_MAX_CONCURRENT_STREAMS, idle ones close, and
# reconnects resume their TLS 1.3 session.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sidecar_lib.sh"
source "$(dirname "$0")/sidecar_outbound_lib.sh"
cd "$WORK" || exit 1

start_pair_backend --threads 2
start_frontend routes.json --threads 1 --upstream-idle-timeout 1s
OUT=http://127.0.0.1:$OUT_PORT
OPENED='seam_upstream_connections_opened_total'
ACTIVE='seam_connections_active{direction="upstream"}'

# --- 64 app connections (HTTP/1.1), 64 requests in flight at once: one mesh connection
for i in $(seq 1 64); do echo "url = \"$OUT/slow?ms=300&i=$i\""; done >urls.txt
curl -sS --max-time 30 --parallel --parallel-immediate --parallel-max 64 -H "host: $BACKEND_HOST" \
    -o /dev/null -w '%{http_code}\n' -K urls.txt >codes.txt 2>curl.err
check "64 parallel requests on 64 app connections: all 200" 64 "$(grep -c '^200$' codes.txt)"
check "they shared one mesh connection" 1 "$(ometric "$OPENED")"
check "the inbound side saw one full handshake" 1 \
    "$(imetric 'seam_tls_handshakes_total{direction="inbound",resumed="false"}')"

# --- 200 concurrent requests over 64 h2c app connections: past 100 streams a second connection opens
if h2load -c64 -n200 -m4 -H ":authority: $BACKEND_HOST" "$OUT/slow?ms=500" >h2load.txt 2>&1; then
    pass "h2load ran"
else
    fail "h2load ran" "$(tail -5 h2load.txt)"
fi
check_contains "200 concurrent requests succeeded" "200 succeeded, 0 failed, 0 errored" "$(cat h2load.txt)"
opened=$(ometric "$OPENED")
echo "# mesh connections opened so far: $opened"
if [ "$opened" -ge 2 ] && [ "$opened" -le 4 ]; then
    pass "200 concurrent streams used a few mesh connections (2..4, got $opened)"
else
    fail "200 concurrent streams used a few mesh connections" "opened $opened"
fi

# --- idle connections close; the next request reconnects and resumes
check "idle mesh connections close after --upstream-idle-timeout" 0 "$(ADMIN_PORT=$OUT_ADMIN wait_metric "$ACTIVE" 0 10)"
before_in=$(imetric 'seam_tls_handshakes_total{direction="inbound",resumed="true"}')
before_out=$(ometric 'seam_tls_handshakes_total{direction="outbound",resumed="true"}')
check "a request after the pool closed: 200" 200 "$(out -H "host: $BACKEND_HOST" "$OUT/api/again")"
check "the reconnect resumed its TLS session (outbound metric)" "$((before_out + 1))" \
    "$(ometric 'seam_tls_handshakes_total{direction="outbound",resumed="true"}')"
check "the inbound side counted a resumed handshake" "$((before_in + 1))" \
    "$(imetric 'seam_tls_handshakes_total{direction="inbound",resumed="true"}')"
check_contains "access log: resumed" '"resumed":true' "$(grep '"path":"/api/again"' frontend.log)"
check_contains "inbound access log: resumed, same peer" "\"peer_id\":\"$CLIENT_ID\"" \
    "$(grep '"path":"/api/again"' backend.log)"
check "one mesh connection again" 1 "$(ometric "$ACTIVE")"

# --- the upstream restarts: the dead connection is dropped and a new one made
stop_pid "$BACKEND_PID"
ADMIN_PORT=$IN_ADMIN
start_sidecar backend2 --inbound "127.0.0.1:$IN_PORT" --app "127.0.0.1:$APP_PORT" --policy "$WORK/policy.json"
BACKEND_PID=$SC_PID
wait_port "$IN_PORT" 10
code=000
for ((i = 0; i < 20; i++)); do
    code=$(out -H "host: $BACKEND_HOST" "$OUT/api/after-restart")
    [ "$code" = 200 ] && break
    sleep 0.2
done
check "after the upstream restarted, requests work again" 200 "$code"
# keep the sidecars' logs of a failed run (bazel puts them in test.outputs)
if [ "$FAILED" -ne 0 ] && [ -n "${TEST_UNDECLARED_OUTPUTS_DIR:-}" ]; then
    cp frontend.log frontend.err backend.log backend.err "$TEST_UNDECLARED_OUTPUTS_DIR/" 2>/dev/null
fi
finish
