#!/usr/bin/env bash
# What an idle mTLS HTTP/2 connection costs the inbound sidecar: 1,000 connections that finished
# the handshake and sent the preface and SETTINGS, then nothing. Once idle, a connection gives its
# write buffers back, and every page of nghttp2's frame buffer and of its empty stream map, so each
# holds about 31.5 KB of RSS (39.8 KB when the frame buffer shared pages with other allocations and
# the map stayed; 53 KB before any of it; HAProxy 2.6 holds about 32.2 KB on the same client). Some
# of the idle connections then serve requests again, after a second idle spell too. Under
# AddressSanitizer memory is instrumented, so only the connections and the sidecar's health are
# checked there.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sidecar_lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$WORK" || exit 1
COUNT=1000
LIMIT_KB=34

make_ca ca
make_leaf server "$SERVER_ID"
make_leaf frontend spiffe://$TD/ns/default/sa/frontend
APP_PORT=$(free_port)
IN_PORT=$(free_port)
ADMIN_PORT=$(free_port)
start_sidecar sc --inbound "127.0.0.1:$IN_PORT" --app "127.0.0.1:$APP_PORT"
wait_port "$IN_PORT" 10

res=$(python3 "$HERE/sidecar_idle_conns_memory.py" "$IN_PORT" frontend.pem frontend.key ca/bundle.pem $COUNT "$SC_PID" \
    2>idle.err)
check "all $COUNT idle connections were accepted" "open $COUNT of $COUNT" "${res%%;*}"
answered=${res#*; }
check "idle connections answer requests again, also after a second idle spell" "answered 10 of 10" "${answered%%;*}"
# no --policy: each is denied, by the sidecar itself, over the connection's HTTP/2 session
check "each was answered 403 (access log)" 10 "$(grep -c '"path":"/after-idle","protocol":"h2".*"status":403' "$WORK/sc.log")"
per_conn=${res##*; }
if [ -n "${ASAN_OPTIONS:-}" ]; then
    pass "memory per idle connection: ${per_conn} KB (AddressSanitizer build: not bounded)"
elif [[ $per_conn =~ ^[0-9.]+$ ]] && awk -v v="$per_conn" -v l=$LIMIT_KB 'BEGIN { exit !(v < l) }'; then
    pass "memory per idle connection under $LIMIT_KB KB (${per_conn} KB)"
else
    fail "memory per idle connection under $LIMIT_KB KB" "${per_conn:-nothing measured} ($(head -c 300 idle.err))"
fi
check "/ready after the connections closed" 200 "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$ADMIN_PORT/ready")"
finish
