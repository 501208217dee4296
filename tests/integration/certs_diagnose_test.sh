#!/usr/bin/env bash
# seam-certs diagnose against real local servers, one per failure category:
# openssl s_server with each kind of bad certificate or TLS setting, a plain
# HTTP server, a silent listener and a closed port. All on 127.0.0.1.
source "$(dirname "$0")/lib.sh"

CERTS=$(seam_bin certs/seam-certs)
TESTCERT=$(seam_bin tests/tools/seam-testcert)
TD=cluster.local
ID=spiffe://$TD/ns/default/sa/backend
CLIENT_ID=spiffe://$TD/ns/default/sa/frontend
cd "$WORK" || exit 1

"$CERTS" init-root --out ca --trust-domain $TD >/dev/null
"$CERTS" init-root --out other --trust-domain $TD >/dev/null
"$CERTS" issue --ca-dir ca --spiffe-id $ID --out backend >/dev/null
"$CERTS" issue --ca-dir ca --spiffe-id $CLIENT_ID --out client >/dev/null
"$CERTS" issue --ca-dir other --spiffe-id $ID --out foreign >/dev/null
"$TESTCERT" --ca-dir ca --uri $ID --not-before -7200 --not-after -3600 --out expired
"$TESTCERT" --ca-dir ca --uri $ID --not-before 3600 --not-after 7200 --out future
"$TESTCERT" --ca-dir ca --dns other.example --subject-cn other.example --out dnsonly
# leaf alone, as a server that forgot its intermediate would send it
sed -n '1,/END CERTIFICATE/p' backend.pem >backend-leaf.pem

SERVER_PID=
# serve NAME CERT KEY [s_server options...]: starts openssl s_server on a free port (sets PORT).
serve() {
    local name=$1 cert=$2 key=$3
    shift 3
    PORT=$(free_port)
    local chain=()
    # send the intermediate after the leaf unless the test wants the leaf alone
    if [ "$(grep -c 'BEGIN CERTIFICATE' "$cert")" -gt 1 ]; then
        sed '1,/END CERTIFICATE/d' "$cert" >"$cert.rest"
        chain=(-cert_chain "$cert.rest")
    fi
    start_bg "$name" openssl s_server -accept "127.0.0.1:$PORT" -cert "$cert" "${chain[@]}" -key "$key" -quiet "$@"
    SERVER_PID=$LAST_PID
    wait_port "$PORT"
}

stop_server() {
    [ -n "$SERVER_PID" ] && stop_pid "$SERVER_PID"
    SERVER_PID=
}

# expect NAME CATEGORY WANT_RC ARGS...: runs diagnose and checks category and exit code.
expect() {
    local name=$1 category=$2 want_rc=$3
    shift 3
    local out rc
    out=$("$CERTS" diagnose "$@" 2>&1)
    rc=$?
    check "$name: category" "result:  $category" "$(printf '%s\n' "$out" | grep '^result:')"
    check "$name: exit code" "$want_rc" "$rc"
    if [ "$category" != ok ]; then
        check_contains "$name: names a fix" "fix:" "$out"
    fi
    LAST_OUT=$out
}

serve ok backend.pem backend.key
expect "ok" ok 0 "127.0.0.1:$PORT" --bundle ca/bundle.pem --spiffe-id $ID
check_contains "ok: shows the peer" "peer:    $ID" "$LAST_OUT"
check_contains "ok: TLS 1.3" "tls:     TLSv1.3" "$LAST_OUT"
check_contains "ok: leaf + intermediate sent" "2 certificate(s) sent" "$LAST_OUT"
expect "ok without expected ID" ok 0 "127.0.0.1:$PORT" --bundle ca/bundle.pem
expect "name-mismatch (SPIFFE ID)" name-mismatch 1 "127.0.0.1:$PORT" --bundle ca/bundle.pem \
    --spiffe-id spiffe://$TD/ns/default/sa/db
check_contains "name-mismatch: expected and got" "expected spiffe://$TD/ns/default/sa/db, got $ID" "$LAST_OUT"
expect "untrusted-root (other bundle)" untrusted-root 1 "127.0.0.1:$PORT" --bundle other/bundle.pem
stop_server

serve dnsonly dnsonly.pem dnsonly.key
expect "name-mismatch (DNS name)" name-mismatch 1 "127.0.0.1:$PORT" --bundle ca/bundle.pem
stop_server

serve expired expired.pem expired.key
expect "expired" expired 1 "127.0.0.1:$PORT" --bundle ca/bundle.pem --spiffe-id $ID
stop_server

serve future future.pem future.key
expect "not-yet-valid" not-yet-valid 1 "127.0.0.1:$PORT" --bundle ca/bundle.pem --spiffe-id $ID
stop_server

serve missing backend-leaf.pem backend.key
expect "missing-intermediate" missing-intermediate 1 "127.0.0.1:$PORT" --bundle ca/bundle.pem --spiffe-id $ID
stop_server

serve foreign foreign.pem foreign.key
expect "untrusted-root (other CA)" untrusted-root 1 "127.0.0.1:$PORT" --bundle ca/bundle.pem --spiffe-id $ID
stop_server

serve tls12 backend.pem backend.key -no_tls1_3
expect "no-shared-cipher (TLS 1.2 only)" no-shared-cipher 1 "127.0.0.1:$PORT" --bundle ca/bundle.pem
stop_server

serve ccm backend.pem backend.key -ciphersuites TLS_AES_128_CCM_SHA256
expect "no-shared-cipher (suite)" no-shared-cipher 1 "127.0.0.1:$PORT" --bundle ca/bundle.pem
stop_server

serve mtls backend.pem backend.key -Verify 1 -verify_return_error -CAfile ca/bundle.pem
expect "client-cert-required" client-cert-required 1 "127.0.0.1:$PORT" --bundle ca/bundle.pem --spiffe-id $ID
expect "ok with a client certificate" ok 0 "127.0.0.1:$PORT" --bundle ca/bundle.pem --spiffe-id $ID \
    --cert client.pem --key client.key
stop_server

serve mtls-other backend.pem backend.key -Verify 1 -verify_return_error -CAfile other/bundle.pem
expect "client-cert-rejected" client-cert-rejected 1 "127.0.0.1:$PORT" --bundle ca/bundle.pem \
    --cert client.pem --key client.key
stop_server

PORT=$(free_port)
start_bg http python3 -m http.server --bind 127.0.0.1 "$PORT"
HTTP_PID=$LAST_PID
wait_port "$PORT"
expect "plain-http" plain-http 1 "127.0.0.1:$PORT" --bundle ca/bundle.pem --timeout 2s
stop_pid "$HTTP_PID"

PORT=$(free_port)
expect "connection-refused" connection-refused 1 "127.0.0.1:$PORT" --bundle ca/bundle.pem

# A listener that never accepts: the kernel completes the TCP handshake, nobody answers TLS or HTTP.
PORT=$(free_port)
start_bg silent python3 -c 'import socket,sys,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(8); time.sleep(60)' "$PORT"
SILENT_PID=$LAST_PID
wait_port "$PORT"
start=$(date +%s)
expect "timeout" timeout 1 "127.0.0.1:$PORT" --bundle ca/bundle.pem --timeout 1s
elapsed=$(($(date +%s) - start))
[ "$elapsed" -le 5 ] && pass "timeout is bounded (${elapsed}s)" || fail "timeout is bounded" "${elapsed}s"
stop_pid "$SILENT_PID"

# usage and input errors
"$CERTS" diagnose nohostport >/dev/null 2>&1
check "bad target is a usage error" 2 $?
"$CERTS" diagnose 127.0.0.1:1 --cert client.pem >/dev/null 2>&1
check "--cert without --key is a usage error" 2 $?
out=$("$CERTS" diagnose 127.0.0.1:1 --bundle missing.pem 2>&1)
check "missing bundle exits 1" 1 $?
check_contains "missing bundle named" "missing.pem" "$out"
finish
