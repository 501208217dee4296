#!/usr/bin/env bash
# seam-sidecar inbound end to end: mTLS handshake matrix, policy decisions over h2 and
# http/1.1, x-forwarded-client-cert, app down, access log and /metrics counters.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sidecar_lib.sh"
cd "$WORK" || exit 1

APP_PORT=$(free_port)
IN_PORT=$(free_port)
ADMIN_PORT=$(free_port)
URL=https://127.0.0.1:$IN_PORT

# --- identities: good ones, and every kind the handshake must refuse
make_ca ca
make_ca other-ca
make_leaf server "$SERVER_ID"
make_leaf frontend spiffe://$TD/ns/default/sa/frontend
make_leaf opstool spiffe://$TD/ns/ops/sa/tool
make_leaf stranger spiffe://$TD/ns/default/sa/stranger
"$CERTS" issue --ca-dir other-ca --spiffe-id spiffe://$TD/ns/default/sa/frontend --out unknown-ca >/dev/null
"$TESTCERT" --ca-dir ca --uri spiffe://$TD/ns/default/sa/frontend --not-before -7200 --not-after -3600 --out expired
"$TESTCERT" --ca-dir ca --uri spiffe://$TD/ns/default/sa/frontend --not-before 3600 --not-after 7200 --out notyet
"$TESTCERT" --ca-dir ca --dns frontend.default.svc --out nouri
"$TESTCERT" --ca-dir ca --uri spiffe://$TD/ns/default/sa/frontend --uri spiffe://$TD/ns/default/sa/other --out twouri
"$TESTCERT" --ca-dir ca --uri spiffe://$TD/ns/default/sa/frontend --ca --key-usage digitalSignature,keyCertSign --out catrue

cat >policy.json <<EOF
{"mode": "enforce", "default": "deny",
 "rules": [{"name": "frontend-reads",
            "from": ["spiffe://$TD/ns/default/sa/frontend", "spiffe://$TD/ns/ops/*"],
            "methods": ["GET", "HEAD"], "paths": ["/api/*", "/healthz"]},
           {"name": "mesh-public", "from": ["*"], "paths": ["/public/*"]}]}
EOF

start_app "$APP_PORT"
start_sidecar sc --inbound "127.0.0.1:$IN_PORT" --app "127.0.0.1:$APP_PORT" --policy policy.json --threads 2
wait_port "$IN_PORT" 10
check "/ready is 200" 200 "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$ADMIN_PORT/ready)"
check "/live is 200" 200 "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$ADMIN_PORT/live)"

SENT_200=0
SENT_403=0
SENT_400=0
SENT_503=0
# expect NAME WANT CLIENT PROTO PATH [CURL ARGS...]
expect() {
    local name=$1 want=$2 who=$3 proto=$4 path=$5
    shift 5
    local got
    got=$(code "$who" "$proto" "$URL$path" "$@")
    check "$name" "$want" "$got"
    case "$got" in 200) SENT_200=$((SENT_200 + 1)) ;; 400) SENT_400=$((SENT_400 + 1)) ;; 403) SENT_403=$((SENT_403 + 1)) ;; 503) SENT_503=$((SENT_503 + 1)) ;; esac
}

# --- allow and deny, both protocols
expect "allowed identity over h2" 200 frontend --http2 /api/items
check_contains "request reached the app" '"path": "/api/items"' "$(cat body)"
expect "allowed identity over http/1.1" 200 frontend --http1.1 /api/items
expect "exact path rule" 200 frontend --http2 /healthz
expect "exact path does not match a longer one" 403 frontend --http2 /healthz/deep
# the policy judges the path the app receives: no way past /api/* to a file outside it
for proto in --http2 --http1.1; do
    expect "merged slash, then ..: judged and sent as /admin ($proto)" 403 frontend $proto "/api//../admin/secret.txt" --path-as-is
    expect "encoded slash refused ($proto)" 400 frontend $proto "/api/%2f../admin/secret.txt" --path-as-is
    expect "escape above the root refused ($proto)" 400 frontend $proto "/api/../../admin/secret.txt" --path-as-is
    expect "dot segments inside the rule: the app gets the normalised path ($proto)" 200 frontend $proto "/api/./x/../items" --path-as-is
    check_contains "the app saw /api/items ($proto)" '"path": "/api/items"' "$(cat body)"
done
expect "HEAD is listed" 200 frontend --http1.1 /api/items -I
expect "method outside the rule" 403 frontend --http2 /api/items -X POST
expect "method outside the rule (http/1.1)" 403 frontend --http1.1 /api/items -X DELETE
expect "path outside the rule" 403 frontend --http2 /admin
check_contains "403 body names the rule set" "policy policy.json denies spiffe://$TD/ns/default/sa/frontend GET /admin" "$(cat body)"
expect "dot segments are resolved before matching" 403 frontend --http2 /api/../admin --path-as-is
expect "prefix 'from' rule" 200 opstool --http2 /api/items
expect "identity not in the policy" 403 stranger --http2 /api/items
expect "identity not in the policy (http/1.1)" 403 stranger --http1.1 /api/items
expect "'*' rule admits any mesh identity" 200 stranger --http2 /public/page
expect "'*' rule still checks the path" 403 stranger --http1.1 /private

# --- bodies both ways (20 MB up, 20 MB down)
head -c 20000000 /dev/urandom >upload.bin
expect "20 MB upload over h2" 200 stranger --http2 /public/upload --data-binary @upload.bin -H 'content-type: application/octet-stream'
check_contains "app received every byte" '"body_length": 20000000' "$(cat body)"
expect "20 MB upload over http/1.1" 200 stranger --http1.1 /public/upload --data-binary @upload.bin
check_contains "app received every byte (http/1.1)" '"body_length": 20000000' "$(cat body)"
expect "20 MB download over h2" 200 stranger --http2 "/public/bytes?n=20000000"
check "downloaded every byte" 20000000 "$(stat -c %s body)"

# --- negotiated protocol and the identity header
ALPN=$(openssl s_client -connect 127.0.0.1:$IN_PORT -alpn h2,http/1.1 -cert frontend.pem -key frontend.key </dev/null 2>/dev/null | grep -i '^ALPN')
check_contains "ALPN selects h2" "h2" "$ALPN"
PROTO=$(openssl s_client -connect 127.0.0.1:$IN_PORT -alpn h2 -cert frontend.pem -key frontend.key </dev/null 2>/dev/null | grep -E "TLSv1")
check_contains "TLS 1.3 negotiated" "TLSv1.3" "$PROTO"
expect "spoofed x-forwarded-client-cert" 200 frontend --http2 /api/xfcc -H "x-forwarded-client-cert: By=spiffe://evil/x;URI=spiffe://$TD/ns/kube-system/sa/admin"
check_contains "app sees exactly the sidecar's header" "\"xfcc\": [\"By=$SERVER_ID;URI=spiffe://$TD/ns/default/sa/frontend\"]" "$(cat body)"
expect "spoofed header over http/1.1, twice" 200 frontend --http1.1 /api/xfcc -H "x-forwarded-client-cert: a" -H "X-Forwarded-Client-Cert: b"
check_contains "both copies replaced" "\"xfcc\": [\"By=$SERVER_ID;URI=spiffe://$TD/ns/default/sa/frontend\"]" "$(cat body)"

# --- handshakes that must fail, each with its reason counted
# refused NAME REASON CURL-ARGS...: the handshake fails and reason's counter goes up by one.
refused() {
    local name=$1 reason=$2 series before got
    shift 2
    series="seam_tls_handshake_errors_total{direction=\"inbound\",reason=\"$reason\"}"
    before=$(metric "$series")
    got=$(curl -sS -k --max-time 10 -o /dev/null -w '%{http_code}' "$@" "$URL/api/items" 2>/dev/null)
    check "$name: no response" "000" "$got"
    check "$name: counted as $reason" "$((before + 1))" "$(wait_metric "$series" $((before + 1)))"
}
refused "no client certificate" client-cert-required --http2
refused "unknown CA" untrusted-root --http2 --cert unknown-ca.pem --key unknown-ca.key
refused "expired certificate" expired --http2 --cert expired.pem --key expired.key
refused "not-yet-valid certificate" not-yet-valid --http1.1 --cert notyet.pem --key notyet.key
refused "no URI SAN" no-uri-san --http2 --cert nouri.pem --key nouri.key
refused "two URI SANs" several-uri-sans --http2 --cert twouri.pem --key twouri.key
refused "CA:TRUE leaf" not-a-leaf --http2 --cert catrue.pem --key catrue.key
refused "TLS 1.2 client" no-shared-cipher --http2 --tlsv1.2 --tls-max 1.2 --cert frontend.pem --key frontend.key
before=$(metric 'seam_tls_handshake_errors_total{direction="inbound",reason="plain-http"}')
check "plain HTTP on the mTLS port: no response" 000 "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$IN_PORT/api/items")"
check "plain HTTP counted" "$((before + 1))" \
    "$(wait_metric 'seam_tls_handshake_errors_total{direction="inbound",reason="plain-http"}' $((before + 1)))"
before=$(metric 'seam_tls_handshake_errors_total{direction="inbound",reason="client-cert-required"}')
openssl s_client -connect 127.0.0.1:$IN_PORT -tls1_3 </dev/null >s_client.out 2>&1
check "openssl s_client without a certificate is refused" "$((before + 1))" \
    "$(wait_metric 'seam_tls_handshake_errors_total{direction="inbound",reason="client-cert-required"}' $((before + 1)))"
before=$(metric 'seam_tls_handshake_errors_total{direction="inbound",reason="missing-intermediate"}')
openssl s_client -connect 127.0.0.1:$IN_PORT -cert frontend.pem -key frontend.key </dev/null >s_client.out 2>&1
check "leaf without its intermediate is refused" "$((before + 1))" \
    "$(wait_metric 'seam_tls_handshake_errors_total{direction="inbound",reason="missing-intermediate"}' $((before + 1)))"
check_contains "refusal logged with its category" "refused: expired" "$(cat sc.err)"
check_contains "refusal log names the chain problem" "refused: no-uri-san" "$(cat sc.err)"

# --- TLS 1.3 session resumption keeps the verified identity
RESUMED0=$(metric 'seam_tls_handshakes_total{direction="inbound",resumed="true"}')
(printf 'GET /api/first HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'; sleep 1) |
    openssl s_client -connect 127.0.0.1:$IN_PORT -cert frontend.pem -cert_chain frontend.pem -key frontend.key \
        -sess_out session.pem -quiet >first.out 2>/dev/null
(printf 'GET /api/resumed HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'; sleep 1) |
    openssl s_client -connect 127.0.0.1:$IN_PORT -sess_in session.pem >resumed.out 2>/dev/null
check_contains "session resumed" "Reused, TLSv1.3" "$(cat resumed.out)"
check_contains "resumed connection served" "HTTP/1.1 200" "$(cat resumed.out)"
SENT_200=$((SENT_200 + 2))
check "resumed handshake counted" "$((RESUMED0 + 1))" "$(metric 'seam_tls_handshakes_total{direction="inbound",resumed="true"}')"
check_contains "access log: resumed keeps the peer" "\"peer_id\":\"spiffe://$TD/ns/default/sa/frontend\"" \
    "$(grep '"path":"/api/resumed"' sc.log)"
check_contains "access log: resumed flag" '"resumed":true' "$(grep '"path":"/api/resumed"' sc.log)"

# --- a session ends with its peer's certificate: past notAfter, resuming falls back to a full handshake
"$TESTCERT" --ca-dir ca --uri spiffe://$TD/ns/default/sa/frontend --not-after 3 --out shortlived
(printf 'GET /api/short HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'; sleep 1) |
    openssl s_client -connect 127.0.0.1:$IN_PORT -cert shortlived.pem -cert_chain shortlived.pem \
        -key shortlived.key -sess_out short-session.pem -quiet >short.out 2>/dev/null
check_contains "a short-lived certificate is served while valid" "HTTP/1.1 200" "$(cat short.out)"
SENT_200=$((SENT_200 + 1))
sleep 4
(printf 'GET /api/short-resumed HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'; sleep 1) |
    openssl s_client -connect 127.0.0.1:$IN_PORT -sess_in short-session.pem >short-resumed.out 2>/dev/null
check_contains "the session of an expired certificate is not resumed" "New, TLSv1.3" "$(cat short-resumed.out)"
check "nothing reached the app on it" 0 "$(grep -c '"path":"/api/short-resumed"' sc.log)"

# --- app down: 503 naming the app
stop_pid "$APP_PID"
expect "app down gives 503" 503 frontend --http2 /api/items
check_contains "503 body says the app is unreachable" "app at 127.0.0.1:$APP_PORT is unreachable" "$(cat body)"
expect "app down over http/1.1" 503 frontend --http1.1 /api/items
start_app "$APP_PORT"
expect "app back" 200 frontend --http2 /api/items

# --- access log
LINES=$(grep -c '^{' sc.log)
check "one access-log line per request" "$((SENT_200 + SENT_400 + SENT_403 + SENT_503))" "$LINES"
LAST=$(grep '"path":"/api/xfcc"' sc.log | head -1)
for field in ts direction peer_id method authority path protocol status decision rule duration_ms tls_version resumed; do
    check_contains "access log has $field" "\"$field\":" "$LAST"
done
check_contains "access log: peer" "\"peer_id\":\"spiffe://$TD/ns/default/sa/frontend\"" "$LAST"
check_contains "access log: h2" '"protocol":"h2"' "$LAST"
check_contains "access log: rule" '"rule":"frontend-reads"' "$LAST"
check_contains "access log: http/1.1" '"protocol":"http/1.1"' "$(grep '"path":"/api/items"' sc.log | sed -n 2p)"
check_contains "access log: deny" '"decision":"deny","rule":"default"' "$(grep '"path":"/admin"' sc.log)"
if python3 -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1]) if l.strip()]' sc.log; then
    pass "every access-log line is JSON"
else
    fail "every access-log line is JSON"
fi

# --- /metrics: valid exposition text, counters equal what was sent
curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" >metrics.txt
if python3 - metrics.txt <<'EOF'; then pass "/metrics parses as Prometheus text"; else fail "/metrics parses as Prometheus text"; fi
import re, sys
sample = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? [-+]?([0-9.eE+-]+|Inf|NaN)$')
typed = set()
for line in open(sys.argv[1]):
    line = line.rstrip("\n")
    if line.startswith("# TYPE "):
        parts = line.split()
        assert parts[3] in ("counter", "gauge", "histogram", "summary", "untyped"), line
        typed.add(parts[2])
    elif line.startswith("#") or not line:
        continue
    else:
        assert sample.match(line), "bad sample line: " + line
        name = re.match(r'[a-zA-Z_:][a-zA-Z0-9_:]*', line).group(0)
        base = re.sub(r'_(bucket|sum|count)$', '', name)
        assert name in typed or base in typed, "sample without TYPE: " + line
for want in ("seam_requests_total", "seam_request_duration_seconds", "seam_authz_decisions_total",
             "seam_tls_handshakes_total", "seam_tls_handshake_errors_total", "seam_cert_expiry_timestamp_seconds",
             "seam_cert_rotations_total", "seam_connections_active"):
    assert want in typed, "missing " + want
EOF
check "requests_total{code=200} matches" "$SENT_200" "$(metric 'seam_requests_total{direction="inbound",code="200"}')"
check "requests_total{code=403} matches" "$SENT_403" "$(metric 'seam_requests_total{direction="inbound",code="403"}')"
check "requests_total{code=503} matches" "$SENT_503" "$(metric 'seam_requests_total{direction="inbound",code="503"}')"
check "authz deny count matches" "$SENT_403" "$(metric 'seam_authz_decisions_total{decision="deny"}')"
check "authz allow count matches" "$((SENT_200 + SENT_503))" "$(metric 'seam_authz_decisions_total{decision="allow"}')"
check "histogram count matches" "$((SENT_200 + SENT_400 + SENT_403 + SENT_503))" "$(metric 'seam_request_duration_seconds_count{direction="inbound"}')"
check "no connection left open" 0 "$(wait_metric 'seam_connections_active{direction="inbound"}' 0)"
HS=$(($(metric 'seam_tls_handshakes_total{direction="inbound",resumed="false"}') + $(metric 'seam_tls_handshakes_total{direction="inbound",resumed="true"}')))
[ "$HS" -ge "$((SENT_200 + SENT_400 + SENT_403 + SENT_503))" ] && pass "handshakes counted ($HS)" || fail "handshakes counted" "$HS"

# --- admin endpoint
CERTS_JSON=$(curl -s "http://127.0.0.1:$ADMIN_PORT/certs")
check_contains "/certs names the identity" "\"spiffe_id\": \"$SERVER_ID\"" "$CERTS_JSON"
check_contains "/certs has the serial" "\"serial\":" "$CERTS_JSON"
check_contains "/certs has expires_in_seconds" "\"expires_in_seconds\":" "$CERTS_JSON"
check "/certs chain is the file's chain" "$(openssl x509 -in server.pem -noout -fingerprint)" \
    "$(printf '%s' "$CERTS_JSON" | python3 -c 'import json,sys; print(json.load(sys.stdin)["chain"][0], end="")' | openssl x509 -noout -fingerprint)"
check "/certs chain has leaf and intermediate" 2 "$(printf '%s' "$CERTS_JSON" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["chain"]))')"
check "/certs bundle is the root" "$(openssl x509 -in ca/root.pem -noout -fingerprint)" \
    "$(printf '%s' "$CERTS_JSON" | python3 -c 'import json,sys; print(json.load(sys.stdin)["bundle"][0], end="")' | openssl x509 -noout -fingerprint)"
case "$CERTS_JSON" in *PRIVATE*) fail "/certs shows no key" ;; *) pass "/certs shows no key" ;; esac
check_contains "/config shows flags" "\"threads\": 2" "$(curl -s "http://127.0.0.1:$ADMIN_PORT/config")"
check_contains "/policy shows the rules" "frontend-reads" "$(curl -s "http://127.0.0.1:$ADMIN_PORT/policy")"
check "POST /rotate is 501 in static mode" 501 "$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$ADMIN_PORT/rotate")"
# a web page must not change state through the admin endpoint: Origin, or a Host naming something else, is 403
admin_code() { curl -s -o "$WORK/admin.body" -w '%{http_code}' "$@"; }
check "POST /rotate from a page (Origin, text/plain, foreign Host): 403" 403 \
    "$(admin_code -X POST -H 'Origin: http://evil.example' -H 'Content-Type: text/plain' -H 'Host: evil.example' \
        --data x "http://127.0.0.1:$ADMIN_PORT/rotate")"
check "... with a one-line body" 1 "$(grep -c . "$WORK/admin.body")"
check_contains "... naming the reason" "must not carry an Origin header" "$(cat "$WORK/admin.body")"
check "POST /rotate with Origin alone: 403" 403 \
    "$(admin_code -X POST -H 'Origin: http://127.0.0.1' "http://127.0.0.1:$ADMIN_PORT/rotate")"
check "POST /rotate with a rebound Host: 403" 403 \
    "$(admin_code -X POST -H "Host: evil.example:$ADMIN_PORT" "http://127.0.0.1:$ADMIN_PORT/rotate")"
check "POST to an unknown path with a rebound Host: 403 too" 403 \
    "$(admin_code -X POST -H 'Host: evil.example' "http://127.0.0.1:$ADMIN_PORT/nope")"
NO_HOST=$(python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"POST /rotate HTTP/1.0\r\nContent-Length: 0\r\n\r\n")
print(s.recv(100).split(b" ")[1].decode())' "$ADMIN_PORT")
check "POST /rotate without a Host: 403" 403 "$NO_HOST"
check "POST /rotate with Host localhost:OTHER-PORT (a port-forward): 501" 501 \
    "$(admin_code -X POST -H 'Host: localhost:8080' "http://127.0.0.1:$ADMIN_PORT/rotate")"
check "GET /certs from a page is still answered" 200 \
    "$(admin_code -H 'Origin: http://evil.example' -H 'Host: evil.example' "http://127.0.0.1:$ADMIN_PORT/certs")"
check_contains "the refusal is logged" "admin: a request that changes state was refused (origin)" "$(cat sc.err)"
check "unknown admin path is 404" 404 "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$ADMIN_PORT/nope")"
for f in sc.log sc.err; do
    if grep -q "PRIVATE KEY" "$f"; then fail "no key in $f"; else pass "no key in $f"; fi
done

# --- request header limit (--max-request-headers-kb, 60 KiB by default; the front end refuses more)
BIG=$(head -c 62000 /dev/zero | tr '\0' a)
check "oversized headers over h2: 431" 431 "$(code frontend --http2 "$URL/api/big" -H "x-big: $BIG")"
check "oversized headers over http/1.1 refused" 431 "$(code frontend --http1.1 "$URL/api/big" -H "x-big: $BIG")"
check "large but allowed headers pass" 200 "$(code frontend --http2 "$URL/api/big" -H "x-big: ${BIG:0:40000}")"

# --- HTTP/2 rapid reset: a connection that cancels streams faster than the limit is closed
FLOOD=$(python3 "$(dirname "$0")/sidecar_h2_flood.py" 127.0.0.1 "$IN_PORT" frontend.pem frontend.key reset 1000 /api/flood)
check_contains "rapid-reset connection closed by the sidecar" "closed" "$FLOOD"
check "stream-rate close counted" 1 "$(wait_metric 'seam_h2_stream_rate_closes_total{direction="inbound"}' 1)"
check_contains "stream-rate close logged" "streams reset in one second (limit 100)" "$(cat sc.err)"
check "sidecar still serves after the flood" 200 "$(code frontend --http2 "$URL/api/after")"
check "flood connection released" 0 "$(wait_metric 'seam_connections_active{direction="inbound"}' 0 30)"

stopped "SIGTERM" "$SC_PID" sc.err
check_contains "SIGTERM: the drain finished before the exit" "drained; exiting" "$(tail -n 1 sc.err)"
finish
