#!/usr/bin/env bash
# seam-sidecar under load: many requests over 64 concurrent mTLS connections
# (curl --parallel --parallel-immediate opens all 64 at once; once over http/1.1,
# once over h2) with zero errors, and counters that add up.
# SIDECAR_LOAD_REQUESTS sets the request count per protocol (default 2000).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sidecar_lib.sh"
cd "$WORK" || exit 1

N=${SIDECAR_LOAD_REQUESTS:-2000}
CONNS=64
APP_PORT=$(free_port)
IN_PORT=$(free_port)
ADMIN_PORT=$(free_port)
URL=https://127.0.0.1:$IN_PORT

make_ca ca
make_leaf server "$SERVER_ID"
make_leaf frontend spiffe://$TD/ns/default/sa/frontend
cat >policy.json <<EOF
{"rules": [{"name": "api", "from": ["spiffe://$TD/ns/default/sa/frontend"], "methods": ["GET"], "paths": ["/api/*"]}]}
EOF
start_app "$APP_PORT"
start_sidecar sc --inbound "127.0.0.1:$IN_PORT" --app "127.0.0.1:$APP_PORT" --policy policy.json --threads 2
wait_port "$IN_PORT" 10

for ((i = 0; i < N; i++)); do
    printf 'url = "%s/api/item/%d"\noutput = "/dev/null"\n' "$URL" "$i"
done >urls.conf

# load PROTO: runs N requests with at most $CONNS in parallel; prints "ok errors seconds".
load() {
    local start end
    start=$(date +%s%N)
    curl -sS -k --cert frontend.pem --key frontend.key "$1" --parallel --parallel-immediate --parallel-max $CONNS --max-time 60 \
        -w '%{http_code}\n' -K urls.conf >codes.txt 2>curl.err
    end=$(date +%s%N)
    if grep -vq '^200$' codes.txt; then
        echo "# non-200 answers: $(grep -v '^200$' codes.txt | sort | uniq -c | tr '\n' ' ')" >&2
        head -n 5 curl.err >&2
        grep -v '"status":200' sc.log | tail -n 5 >&2
        tail -n 5 sc.err >&2
    fi
    echo "$(grep -c '^200$' codes.txt) $(grep -vc '^200$' codes.txt) $(((end - start) / 1000000))"
}

# handshakes, full and resumed (curl resumes a session when a ticket arrived in time)
handshakes() {
    echo $(($(metric 'seam_tls_handshakes_total{direction="inbound",resumed="false"}') + $(metric 'seam_tls_handshakes_total{direction="inbound",resumed="true"}')))
}

HS0=$(handshakes)
read -r OK ERRS MS < <(load --http1.1)
HS1=$(handshakes)
echo "# http/1.1: $N requests, $CONNS parallel: $OK ok, $ERRS errors, ${MS} ms, $((HS1 - HS0)) TLS handshakes"
check "http/1.1 load: all $N requests 200" "$N" "$OK"
check "http/1.1 load: no errors" 0 "$ERRS"
[ $((HS1 - HS0)) -le $((CONNS * 2)) ] && [ $((HS1 - HS0)) -ge 2 ] && pass "http/1.1 load reused connections ($((HS1 - HS0)) handshakes)" ||
    fail "http/1.1 load reused connections" "$((HS1 - HS0)) handshakes"

read -r OK ERRS MS < <(load --http2)
HS2=$(handshakes)
echo "# h2: $N requests, $CONNS parallel: $OK ok, $ERRS errors, ${MS} ms, $((HS2 - HS1)) TLS handshakes"
check "h2 load: all $N requests 200" "$N" "$OK"
check "h2 load: no errors" 0 "$ERRS"
[ $((HS2 - HS1)) -le $((CONNS * 2)) ] && [ $((HS2 - HS1)) -ge 2 ] && pass "h2 load used many connections ($((HS2 - HS1)) handshakes)" ||
    fail "h2 load used many connections" "$((HS2 - HS1)) handshakes"

check "requests_total{code=200} equals requests sent" $((2 * N)) "$(metric 'seam_requests_total{direction="inbound",code="200"}')"
check "allow decisions equal requests sent" $((2 * N)) "$(metric 'seam_authz_decisions_total{decision="allow"}')"
check "access log has every request" $((2 * N)) "$(grep -c '"status":200' sc.log)"
check "connections closed after the load" 0 "$(wait_metric 'seam_connections_active{direction="inbound"}' 0)"
check "no stream-rate closes under normal load" 0 "$(metric 'seam_h2_stream_rate_closes_total{direction="inbound"}')"
stop_pid "$SC_PID"
finish
