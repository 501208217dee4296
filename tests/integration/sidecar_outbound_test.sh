#!/usr/bin/env bash
# seam-sidecar outbound end to end: app -> outbound sidecar -> (h2 mTLS) -> inbound sidecar -> app,
# by Host, by forward-proxy URI and over h2c; the identity check and every error status the app sees.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sidecar_lib.sh"
source "$(dirname "$0")/sidecar_outbound_lib.sh"
cd "$WORK" || exit 1

make_pair_certs
make_ca other-ca
"$TESTCERT" --ca-dir ca --uri "$SERVER_ID" --not-before -7200 --not-after -3600 --out expired
"$CERTS" issue --ca-dir other-ca --spiffe-id "$SERVER_ID" --out otherca >/dev/null
start_backend

# TLS servers that fail in one way each (openssl s_server), a port nobody listens on,
# and a listener that accepts TCP but never answers.
EXPIRED_PORT=$(free_port)
OTHERCA_PORT=$(free_port)
REJECT_PORT=$(free_port)
DOWN_PORT=$(free_port)
SILENT_PORT=$(free_port)
start_bg s-expired openssl s_server -quiet -tls1_3 -accept "$EXPIRED_PORT" -cert expired.pem -key expired.key -cert_chain ca/intermediate.pem -alpn h2
start_bg s-otherca openssl s_server -quiet -tls1_3 -accept "$OTHERCA_PORT" -cert otherca.pem -key otherca.key -cert_chain other-ca/intermediate.pem -alpn h2
start_bg s-reject openssl s_server -quiet -tls1_3 -accept "$REJECT_PORT" -cert server.pem -key server.key -cert_chain ca/intermediate.pem -alpn h2 \
    -Verify 1 -verify_return_error -CAfile other-ca/bundle.pem
start_bg s-silent python3 -c 'import socket,sys,time
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(16)
time.sleep(3600)' "$SILENT_PORT"
for p in "$EXPIRED_PORT" "$OTHERCA_PORT" "$REJECT_PORT" "$SILENT_PORT"; do wait_port "$p" 10; done

route() { # route HOST UPSTREAM IDENTITY
    printf '{"host": "%s", "upstream": "%s", "identity": "%s"}' "$1" "$2" "$3"
}
cat >routes.json <<EOF
{"routes": [$(route $BACKEND_HOST "127.0.0.1:$IN_PORT" "$SERVER_ID"),
            $(route localhost-backend.svc "localhost:$IN_PORT" "$SERVER_ID"),
            $(route wrong-id.svc "127.0.0.1:$IN_PORT" "spiffe://$TD/ns/default/sa/payments"),
            $(route expired.svc "127.0.0.1:$EXPIRED_PORT" "$SERVER_ID"),
            $(route other-ca.svc "127.0.0.1:$OTHERCA_PORT" "$SERVER_ID"),
            $(route rejects-us.svc "127.0.0.1:$REJECT_PORT" "$SERVER_ID"),
            $(route down.svc "127.0.0.1:$DOWN_PORT" "$SERVER_ID"),
            $(route silent.svc "127.0.0.1:$SILENT_PORT" "$SERVER_ID"),
            $(route no-dns.svc "no-such-host.invalid:15006" "$SERVER_ID")]}
EOF
start_frontend routes.json --upstream-timeout 2s
OUT=http://127.0.0.1:$OUT_PORT
XFCC="By=$SERVER_ID;URI=$CLIENT_ID"
check "/ready of an outbound-only sidecar" 200 "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$OUT_ADMIN/ready)"

# --- the basic path, three ways in
check "by Host (http/1.1): 200" 200 "$(out -H "host: $BACKEND_HOST" "$OUT/api/items")"
check_contains "the app saw the request" '"path": "/api/items"' "$(cat body)"
check_contains "the app saw the frontend's identity in x-forwarded-client-cert" "\"xfcc\": [\"$XFCC\"]" "$(cat body)"
check_contains "the app saw the original Host" "\"host\": \"$BACKEND_HOST\"" "$(cat body)"
check "Host with a port and upper case: 200" 200 "$(out -H "host: Backend.Default.SVC:80" "$OUT/api/port")"
check "forward-proxy form (curl -x): 200" 200 "$(out -x "$OUT" "http://$BACKEND_HOST/api/proxied")"
check_contains "forward-proxy path reached the app" '"path": "/api/proxied"' "$(cat body)"
check "forward-proxy form (http_proxy env): 200" 200 "$(http_proxy=$OUT out "http://$BACKEND_HOST/api/env?x=1")"
check_contains "query string kept" '"path": "/api/env?x=1"' "$(cat body)"
check "h2c prior knowledge: 200" 200 "$(out --http2-prior-knowledge -H "host: $BACKEND_HOST" "$OUT/api/h2c")"
check_contains "h2c request reached the app" '"path": "/api/h2c"' "$(cat body)"
check "upstream named by DNS (localhost): 200" 200 "$(out -H "host: localhost-backend.svc" "$OUT/api/dns")"

# --- the mesh hop is HTTP/2 over mTLS, and the inbound policy judged the frontend's identity
INLINE=$(grep '"path":"/api/items"' backend.log | head -1)
check_contains "inbound side saw h2 on the mesh hop" '"protocol":"h2"' "$INLINE"
check_contains "inbound side saw the frontend's identity" "\"peer_id\":\"$CLIENT_ID\"" "$INLINE"
check_contains "inbound policy allowed it by rule" '"rule":"frontend-api"' "$INLINE"
check "inbound policy denies a path outside the rule: 403" 403 "$(out -H "host: $BACKEND_HOST" "$OUT/admin")"
check_contains "the 403 names the frontend" "denies $CLIENT_ID GET /admin" "$(cat body)"

# --- headers and bodies
check "x-forwarded-client-cert from the app is dropped: 200" 200 \
    "$(out -H "host: $BACKEND_HOST" -H "x-forwarded-client-cert: By=evil;URI=spiffe://$TD/ns/kube-system/sa/admin" "$OUT/api/forged")"
check_contains "only the sidecar's x-forwarded-client-cert arrives" "\"xfcc\": [\"$XFCC\"]" "$(cat body)"
check "hop-by-hop headers dropped: 200" 200 \
    "$(out -H "host: $BACKEND_HOST" -H "connection: keep-alive, x-hop" -H "x-hop: 1" -H "keep-alive: timeout=5" -H "proxy-connection: keep-alive" -H "te: trailers" "$OUT/api/hop")"
check_contains "a header named in Connection stops at the sidecar" '"x_hop": null' "$(cat body)"
check "an ordinary header passes: 200" 200 "$(out -H "host: $BACKEND_HOST" -H "x-hop: 1" "$OUT/api/nohop")"
check_contains "an ordinary header arrives" '"x_hop": "1"' "$(cat body)"
check "absolute-form https:// target is refused: 400" 400 "$(out --request-target "https://$BACKEND_HOST/" "$OUT/")"
check "CONNECT is refused: 405" 405 "$(curl -s --max-time 10 -o /dev/null -w '%{http_connect}' -x "$OUT" "https://$BACKEND_HOST/")"
head -c 1000000 /dev/urandom >upload.bin
check "1 MB upload, content-length (http/1.1): 200" 200 "$(out -H "host: $BACKEND_HOST" --data-binary @upload.bin "$OUT/api/up")"
check_contains "app received every byte" '"body_length": 1000000' "$(cat body)"
check "1 MB upload, chunked (http/1.1): 200" 200 \
    "$(out -H "host: $BACKEND_HOST" -H 'transfer-encoding: chunked' --data-binary @upload.bin "$OUT/api/chunked")"
check_contains "app received every chunked byte" '"body_length": 1000000' "$(cat body)"
check "1 MB upload over h2c: 200" 200 \
    "$(out --http2-prior-knowledge -H "host: $BACKEND_HOST" --data-binary @upload.bin "$OUT/api/h2cup")"
check_contains "app received every h2c byte" '"body_length": 1000000' "$(cat body)"
check "5 MB download (http/1.1): 200" 200 "$(out -H "host: $BACKEND_HOST" "$OUT/bytes?n=5000000")"
check "downloaded every byte" 5000000 "$(stat -c %s body)"
check "5 MB download over h2c: 200" 200 "$(out --http2-prior-knowledge -H "host: $BACKEND_HOST" "$OUT/bytes?n=5000000")"
check "downloaded every byte (h2c)" 5000000 "$(stat -c %s body)"
check "HEAD: 200" 200 "$(out -I -H "host: $BACKEND_HOST" "$OUT/api/head")"

# --- errors the app sees
# expect_error NAME STATUS HOST BODY-NEEDLE [REASON]: the status, the body, the log and the counter.
expect_error() {
    local name=$1 want=$2 host=$3 needle=$4 reason=${5:-} before=0 series
    series="seam_tls_handshake_errors_total{direction=\"outbound\",reason=\"$reason\"}"
    [ -n "$reason" ] && before=$(ometric "$series")
    check "$name: $want" "$want" "$(out -H "host: $host" "$OUT/api/x")"
    check_contains "$name: body names it" "$needle" "$(cat body)"
    if [ -n "$reason" ]; then
        check "$name: counted as $reason" "$((before + 1))" "$(ADMIN_PORT=$OUT_ADMIN wait_metric "$series" $((before + 1)))"
        check_contains "$name: logged" "$needle" "$(cat frontend.err)"
    fi
}
expect_error "upstream with another identity" 502 wrong-id.svc \
    "name-mismatch: expected spiffe://$TD/ns/default/sa/payments, got $SERVER_ID" name-mismatch
expect_error "upstream with an expired certificate" 502 expired.svc "upstream TLS failure: expired" expired
expect_error "upstream from another CA" 502 other-ca.svc "upstream TLS failure: untrusted-root" untrusted-root
expect_error "upstream refusing our certificate" 502 rejects-us.svc "upstream TLS failure: client-cert-rejected" \
    client-cert-rejected
expect_error "upstream down" 503 down.svc "connection-refused"
expect_error "upstream name does not resolve" 503 no-dns.svc "dns-failure: cannot resolve no-such-host.invalid"
expect_error "no route" 404 nothing.example "no route for host \"nothing.example\""
UPSTREAMS='seam_connections_active{direction="upstream"}'
active_before=$(ometric "$UPSTREAMS")
expect_error "upstream never answers TLS" 504 silent.svc "upstream timeout: timeout"
check "the stalled mesh connection is given up after the timeout" "$active_before" "$(ometric "$UPSTREAMS")"
check "slow app behind the upstream: 504" 504 "$(out -H "host: $BACKEND_HOST" "$OUT/slow?ms=4000")"
check "the mesh connection still works after a timed-out stream" 200 "$(out -H "host: $BACKEND_HOST" "$OUT/api/after")"
check "errors over h2c too: 404" 404 "$(out --http2-prior-knowledge -H "host: nothing.example" "$OUT/")"

# --- the access log: one JSON line per request, direction outbound, the mesh side's facts
LINE=$(grep '"path":"/api/items"' frontend.log | head -1)
for field in ts direction peer_id method authority path protocol status decision rule duration_ms tls_version resumed; do
    check_contains "access log has $field" "\"$field\":" "$LINE"
done
check_contains "access log: direction" '"direction":"outbound"' "$LINE"
check_contains "access log: the upstream's identity" "\"peer_id\":\"$SERVER_ID\"" "$LINE"
check_contains "access log: h2 on the mesh side" '"protocol":"h2"' "$LINE"
check_contains "access log: TLS 1.3" '"tls_version":"TLSv1.3"' "$LINE"
check_contains "access log: error category" '"status":502' "$(grep '"authority":"expired.svc"' frontend.log)"
check_contains "access log: error category named" '"error":"expired"' "$(grep '"authority":"expired.svc"' frontend.log)"
check_contains "access log: 404" '"error":"no-route"' "$(grep '"authority":"nothing.example"' frontend.log | head -1)"
if python3 -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1]) if l.strip()]' frontend.log; then
    pass "every access-log line is JSON"
else
    fail "every access-log line is JSON"
fi
check "requests counted by code" 1 "$(ometric 'seam_requests_total{direction="outbound",code="404"}' | awk '{print ($1 >= 1)}')"

# --- routes reload: SIGHUP and file change; a bad file keeps the old routes
cat >routes.json <<EOF
{"routes": [$(route renamed.svc "127.0.0.1:$IN_PORT" "$SERVER_ID")]}
EOF
kill -HUP "$FRONTEND_PID"
for ((i = 0; i < 50; i++)); do grep -q 'routes reloaded (SIGHUP)' frontend.err && break; sleep 0.1; done
check "after SIGHUP the new route works" 200 "$(out -H "host: renamed.svc" "$OUT/api/renamed")"
check "after SIGHUP the old route is gone" 404 "$(out -H "host: $BACKEND_HOST" "$OUT/api/items")"
echo '{"routes": [{"host": "x", "upstream": "nope", "identity": "y"}]}' >routes.json
for ((i = 0; i < 50; i++)); do grep -q 'routes reload (file change) refused' frontend.err && break; sleep 0.1; done
check_contains "a bad routes file is refused with index and field" "routes[0].upstream" "$(cat frontend.err)"
check "the previous routes stay in force" 200 "$(out -H "host: renamed.svc" "$OUT/api/still")"
cat >routes.json <<EOF
{"routes": [$(route $BACKEND_HOST "127.0.0.1:$IN_PORT" "$SERVER_ID")]}
EOF
for ((i = 0; i < 50; i++)); do grep -q 'routes reloaded (file change)' frontend.err && break; sleep 0.1; done
check "a fixed file is picked up on change" 200 "$(out -H "host: $BACKEND_HOST" "$OUT/api/back")"

# --- drain: SIGTERM exits 0
kill -TERM "$FRONTEND_PID"
wait "$FRONTEND_PID"
check "SIGTERM drains and exits 0" 0 "$?"
# keep the sidecars' logs of a failed run (bazel puts them in test.outputs)
if [ "$FAILED" -ne 0 ] && [ -n "${TEST_UNDECLARED_OUTPUTS_DIR:-}" ]; then
    cp frontend.log frontend.err backend.log backend.err "$TEST_UNDECLARED_OUTPUTS_DIR/" 2>/dev/null
fi
finish
