#!/usr/bin/env bash
# seam-sidecar --transparent without interception rules (runs unprivileged): a connection made to the
# outbound listener itself was not redirected, so it is routed by Host, absolute URI or :authority as
# without the flag, and the access log says there was no original destination. Redirected connections
# (iptables REDIRECT, SO_ORIGINAL_DST) are covered by tests/pod/run.sh, which needs root.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sidecar_lib.sh"
source "$(dirname "$0")/sidecar_outbound_lib.sh"
cd "$WORK" || exit 1

make_pair_certs
start_backend
cat >routes.json <<EOF2
{"routes": [{"host": "$BACKEND_HOST", "upstream": "127.0.0.1:$IN_PORT", "identity": "$SERVER_ID"},
            {"host": "127.0.0.1", "upstream": "127.0.0.1:$IN_PORT", "identity": "$SERVER_ID"}]}
EOF2
start_frontend routes.json --transparent
OUT=http://127.0.0.1:$OUT_PORT

check "/ready with --transparent" 200 "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$OUT_ADMIN/ready")"
check_contains "GET /config shows transparent" '"transparent": true' \
    "$(curl -s "http://127.0.0.1:$OUT_ADMIN/config" | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)))')"
check "not redirected, by Host (http/1.1): 200" 200 "$(out -H "host: $BACKEND_HOST" "$OUT/api/direct")"
check_contains "the app saw the frontend's identity" "URI=$CLIENT_ID" "$(cat body)"
check "not redirected, h2c: 200" 200 "$(out --http2-prior-knowledge -H "host: $BACKEND_HOST" "$OUT/api/h2c")"
check "not redirected, forward-proxy form: 200" 200 "$(out -x "$OUT" "http://$BACKEND_HOST/api/proxied")"
# the listener's own address is not an original destination: a plain request to it routes by its Host
check "the listener's address is not taken as a destination: 404 by Host" 404 "$(out -H "host: nothing.example" "$OUT/api/x")"
check_contains "the 404 names the host, not an original destination" 'no route for host "nothing.example"' "$(cat body)"

LINE=$(grep '"path":"/api/direct"' frontend.log | head -1)
check_contains "access log: no original destination" '"original_dst":null' "$LINE"
check_contains "access log: routed to the backend" "\"peer_id\":\"$SERVER_ID\"" "$LINE"
check_contains "404 access log: no original destination" '"original_dst":null' \
    "$(grep '"authority":"nothing.example"' frontend.log | head -1)"
check "nothing about original destinations on stderr" 0 "$(grep -c 'original destination' frontend.err)"

kill -TERM "$FRONTEND_PID"
wait "$FRONTEND_PID"
check "SIGTERM drains and exits 0" 0 "$?"
finish
