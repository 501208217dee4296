#!/usr/bin/env bash
# Hostile request heads against seam-sidecar's front end (sidecar_hostile_headers.py makes them):
# HPACK amplification (one 4,000-byte field named again by one-byte indexes, 64 KB blocks on 3
# mTLS connections) is bounded in memory, answered 431 and ends in GOAWAY ENHANCE_YOUR_CALM; a
# header block that never ends and an HTTP/1.1 head trickled one byte every 2 s are cut 10 s after
# their first byte (GOAWAY, 408); --max-request-headers and --max-request-headers-kb decide 431 on
# both protocols and refuse bad values in one line. Afterwards the sidecars still run and serve, hold
# no connection, have no crash in their logs and exit 0 on SIGTERM.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sidecar_lib.sh"
source "$(dirname "$0")/sidecar_outbound_lib.sh"
HOSTILE=$(cd "$(dirname "$0")" && pwd)/sidecar_hostile_headers.py
cd "$WORK" || exit 1

PY=/usr/bin/python3
RSS_BOUND_KB=32768 # the amplification may grow the sidecar by less than this
HEAD_CUT_MIN=9     # seconds: the whole-head timeout is 10 s from the first byte ...
HEAD_CUT_MAX=13    # ... and the answer or close comes within this (a sanitizer build is slower)

make_pair_certs
APP_PORT=$(free_port)
start_bg app "$PY" "$HOSTILE" app "$APP_PORT"
wait_port "$APP_PORT" 10
cat >policy.json <<EOF
{"mode": "enforce", "default": "deny", "rules": [{"name": "frontend-api", "from": ["$CLIENT_ID"], "paths": ["/api/*"]}]}
EOF
# backend: the inbound listener with the default limits (60 KiB, 100 fields)
IN_PORT=$(free_port)
IN_ADMIN=$(free_port)
ADMIN_PORT=$IN_ADMIN start_sidecar backend --inbound "127.0.0.1:$IN_PORT" --app "127.0.0.1:$APP_PORT" \
    --app-protocol http1 --policy policy.json
BACKEND_PID=$SC_PID
wait_port "$IN_PORT" 10
# wide: another inbound listener with --max-request-headers 150 --max-request-headers-kb 8
WIDE_PORT=$(free_port)
WIDE_ADMIN=$(free_port)
ADMIN_PORT=$WIDE_ADMIN start_sidecar wide --inbound "127.0.0.1:$WIDE_PORT" --app "127.0.0.1:$APP_PORT" \
    --app-protocol http1 --policy policy.json --max-request-headers 150 --max-request-headers-kb 8
WIDE_PID=$SC_PID
wait_port "$WIDE_PORT" 10
# frontend: the outbound listener (plain HTTP/1.1 and h2c) with the defaults
backend_routes >routes.json
start_frontend routes.json --upstream-idle-timeout 1s # its mesh connection to the backend goes soon after use

hostile() {
    "$PY" "$HOSTILE" "$@"
}
# tls MODE PORT ARGS...: a helper mode over mTLS with the frontend identity
tls() {
    local mode=$1 port=$2
    shift 2
    hostile "$mode" 127.0.0.1 "$port" "$WORK/frontend.pem" "$WORK/frontend.key" "$@"
}
plain() {
    local mode=$1 port=$2
    shift 2
    hostile "$mode" 127.0.0.1 "$port" - - "$@"
}
rss_kb() {
    awk '/^VmRSS/ {print $2}' "/proc/$1/status"
}
# active PORT: the connections an admin endpoint counts as open (inbound and outbound summed)
active() {
    local a b
    a=$(ADMIN_PORT=$1 metric 'seam_connections_active{direction="inbound"}')
    b=$(ADMIN_PORT=$1 metric 'seam_connections_active{direction="outbound"}')
    echo $((a + b))
}
wait_idle() { # wait_idle ADMIN_PORT: at most 5 s until no connection is open; prints the count
    local i n
    for ((i = 0; i < 50; i++)); do
        n=$(active "$1")
        [ "$n" = 0 ] && break
        sleep 0.1
    done
    echo "$n"
}
# within NAME SECONDS: passes when HEAD_CUT_MIN <= SECONDS <= HEAD_CUT_MAX
within() {
    if awk -v s="$2" -v lo=$HEAD_CUT_MIN -v hi=$HEAD_CUT_MAX 'BEGIN {exit !(s >= lo && s <= hi)}'; then
        pass "$1 (${2}s)"
    else
        fail "$1" "after ${2}s, not within ${HEAD_CUT_MIN}-${HEAD_CUT_MAX}s"
    fi
}
seconds_of() { # the number after "after " in a helper line
    sed -n 's/.* after \([0-9.]*\).*/\1/p' <<<"$1"
}

AUTH=127.0.0.1:$IN_PORT
# --- (iv) the limits decide 431: default 100 fields / 60 KiB, and the flags' values
check "h2, 100 header fields: 200, all 100 reach the app" '200 {"x_count": 100, "big": 0}' "$(tls h2req "$IN_PORT" "$AUTH" 100 0)"
check "h2, 101 header fields: 431" "431 request headers too large" "$(tls h2req "$IN_PORT" "$AUTH" 101 0)"
check "http/1.1, 100 header fields: 200" '200 {"x_count": 98, "big": 0}' "$(tls h1req "$IN_PORT" "$AUTH" 100 0)"
check "http/1.1, 101 header fields: 431" "431 too many request headers" "$(tls h1req "$IN_PORT" "$AUTH" 101 0)"
check "h2c outbound, 101 header fields: 431" "431 request headers too large" \
    "$(plain h2req "$OUT_PORT" "$BACKEND_HOST" 101 0)"
check "http/1.1 outbound, 101 header fields: 431" "431 too many request headers" \
    "$(plain h1req "$OUT_PORT" "$BACKEND_HOST" 101 0)"
check "h2, a 9,000-byte field under the default 60 KiB: 200" '200 {"x_count": 0, "big": 9000}' \
    "$(tls h2req "$IN_PORT" "$AUTH" 1 9000)"
check "h2, a 59 KB field: 200" '200 {"x_count": 0, "big": 59000}' "$(tls h2req "$IN_PORT" "$AUTH" 1 59000)"
check "h2, a 62 KB field: 431" "431 request headers too large" "$(tls h2req "$IN_PORT" "$AUTH" 1 62000)"
check "http/1.1, a 62 KB head: 431" "431 request headers too large" "$(tls h1req "$IN_PORT" "$AUTH" 3 62000)"
WAUTH=127.0.0.1:$WIDE_PORT
check "--max-request-headers 150, h2 with 101 fields: 200" '200 {"x_count": 101, "big": 0}' \
    "$(tls h2req "$WIDE_PORT" "$WAUTH" 101 0)"
check "--max-request-headers 150, h2 with 150 fields: 200" '200 {"x_count": 150, "big": 0}' \
    "$(tls h2req "$WIDE_PORT" "$WAUTH" 150 0)"
check "--max-request-headers 150, h2 with 151 fields: 431" "431 request headers too large" \
    "$(tls h2req "$WIDE_PORT" "$WAUTH" 151 0)"
check "--max-request-headers 150, http/1.1 with 150 fields: 200" '200 {"x_count": 148, "big": 0}' \
    "$(tls h1req "$WIDE_PORT" "$WAUTH" 150 0)"
check "--max-request-headers 150, http/1.1 with 151 fields: 431" "431 too many request headers" \
    "$(tls h1req "$WIDE_PORT" "$WAUTH" 151 0)"
check "--max-request-headers-kb 8, h2 with a 9,000-byte field: 431" "431 request headers too large" \
    "$(tls h2req "$WIDE_PORT" "$WAUTH" 1 9000)"
check "--max-request-headers-kb 8, http/1.1 with a 9,000-byte field: 431" "431 request headers too large" \
    "$(tls h1req "$WIDE_PORT" "$WAUTH" 3 9000)"
wide_config=$(curl -s --max-time 5 "http://127.0.0.1:$WIDE_ADMIN/config" | tr -d ' \n')
check_contains "/config shows --max-request-headers" '"max-request-headers":150' "$wide_config"
check_contains "/config shows --max-request-headers-kb" '"max-request-headers-kb":8' "$wide_config"

# bad values: exit 2 and one line on stderr that names the flag (or the config key)
bad_flag() { # bad_flag FLAG VALUE
    local rc lines
    "$SIDECAR" --cert server.pem --key server.key --bundle ca/bundle.pem --inbound off --admin 127.0.0.1:0 \
        "$1" "$2" >bad.out 2>bad.err
    rc=$?
    lines=$(wc -l <bad.err)
    check "$1 '$2': exit 2, one line naming the flag" "2|1|yes" \
        "$rc|$lines|$(grep -q -- "$1" bad.err && echo yes || cat bad.err)"
}
for v in 0 1001 abc -5 10x ""; do bad_flag --max-request-headers "$v"; done
for v in 0 1025 60k ""; do bad_flag --max-request-headers-kb "$v"; done
echo '{"max-request-headers": 0}' >bad.json
"$SIDECAR" --config bad.json --cert server.pem --key server.key --bundle ca/bundle.pem >/dev/null 2>bad.err
rc=$?
check "a config file with max-request-headers 0: exit 2, one line naming the key" "2|1|yes" \
    "$rc|$(wc -l <bad.err)|$(grep -q 'bad.json: max-request-headers' bad.err && echo yes || cat bad.err)"

# --- (i) HPACK amplification: 3 connections at once, each sending 64 KB blocks that decode to some
# 260 MB; each block is answered 431 without a copy, the third gets GOAWAY ENHANCE_YOUR_CALM (11)
rss_before=$(rss_kb "$BACKEND_PID")
tls amplify "$IN_PORT" 3 5 "$BACKEND_PID" >amplify.out
rss_after=$(rss_kb "$BACKEND_PID")
growth=$(sed -n 's/^rss_growth_kb=//p' amplify.out)
echo "# amplification: VmRSS ${rss_before} kB before, ${rss_after} kB after, at most +${growth} kB during"
for n in 1 2 3; do
    check_match "amplification, connection $n: 431 twice, then GOAWAY ENHANCE_YOUR_CALM and the close" \
        '^431 431 (431 )?goaway=11 closed$' "$(sed -n "${n}p" amplify.out)"
done
if [ -n "$growth" ] && [ "$growth" -lt "$RSS_BOUND_KB" ]; then
    pass "amplification: the sidecar's RSS grew ${growth} kB (< $RSS_BOUND_KB)"
else
    fail "amplification: RSS growth under $RSS_BOUND_KB kB" "grew [${growth}] kB"
fi
check "amplification: no connection left open" 0 "$(wait_idle "$IN_ADMIN")"
check "the backend still serves after the amplification" '200 {"x_count": 1, "big": 0}' \
    "$(tls h2req "$IN_PORT" "$AUTH" 1 0)"

# --- (ii) a header block that never ends, and (iii) HTTP/1.1 heads trickled one byte every 2 s:
# all at once, so the 10 s timeouts overlap; each helper gives up on its own after 40 s
rss_before=$(rss_kb "$BACKEND_PID")
tls unfinished "$IN_PORT" 3 40 >unfinished-tls.out &
U1=$!
plain unfinished "$OUT_PORT" 1 40 >unfinished-h2c.out &
U2=$!
plain trickle "$OUT_PORT" "$BACKEND_HOST" 40 0 >trickle-plain.out &
T1=$!
tls trickle "$WIDE_PORT" "$WAUTH" 40 0 >trickle-tls.out & # the wide one: the backend holds only the blocks
T2=$!
plain trickle "$OUT_PORT" "$BACKEND_HOST" 20 5 >slow-complete.out &
T3=$!
sleep 5
rss_held=$(rss_kb "$BACKEND_PID")
active_held=$(active "$IN_ADMIN")
wait "$U1" "$U2" "$T1" "$T2" "$T3"
echo "# unfinished blocks: VmRSS ${rss_before} kB before, ${rss_held} kB while held ($active_held connections), $(rss_kb "$BACKEND_PID") kB after"

for n in 1 2 3; do
    line=$(sed -n "${n}p" unfinished-tls.out)
    check_match "unfinished block over mTLS, connection $n: GOAWAY ENHANCE_YOUR_CALM and closed" \
        '^closed after [0-9.]+ goaway=11$' "$line"
    within "unfinished block over mTLS, connection $n: cut 10 s after its first frame" "$(seconds_of "$line")"
done
line=$(cat unfinished-h2c.out)
check_match "unfinished block over h2c: GOAWAY ENHANCE_YOUR_CALM and closed" '^closed after [0-9.]+ goaway=11$' "$line"
within "unfinished block over h2c: cut 10 s after its first frame" "$(seconds_of "$line")"
check "unfinished blocks: the backend held them while they lasted" 3 "$active_held"
check "unfinished blocks: their connections are gone" 0 "$(wait_idle "$IN_ADMIN")"

for f in trickle-plain trickle-tls; do
    answer=$(sed -n 1p $f.out)
    closed=$(sed -n 2p $f.out)
    check_match "trickled head ($f): 408" '^HTTP/1.1 408 Request Timeout after' "$answer"
    within "trickled head ($f): 408 10 s after its first byte" "$(seconds_of "$answer")"
    check_match "trickled head ($f): then the close" '^closed after' "$closed"
    within "trickled head ($f): closed 10 s after its first byte" "$(seconds_of "$closed")"
done
check_match "a head sent slowly but whole within 10 s: 200" '^HTTP/1.1 200 OK after' "$(sed -n 1p slow-complete.out)"
check "trickled heads: the frontend holds no connection" 0 "$(wait_idle "$OUT_ADMIN")"
check "trickled heads: the wide sidecar holds no connection" 0 "$(wait_idle "$WIDE_ADMIN")"

# --- the sidecars still run and serve with no crash in their logs, then stop cleanly (under ASan a
# leak at exit is a report in the log and an exit status that is not 0)
check "the backend still serves" '200 {"x_count": 2, "big": 0}' "$(tls h2req "$IN_PORT" "$AUTH" 2 0)"
check "the frontend still serves" '200 {"x_count": 2, "big": 0}' "$(plain h2req "$OUT_PORT" "$BACKEND_HOST" 2 0)"
survived "after the hostile heads" "$BACKEND_PID" backend.err
survived "after the hostile heads" "$WIDE_PID" wide.err
survived "after the hostile heads" "$FRONTEND_PID" frontend.err
stopped "SIGTERM" "$BACKEND_PID" backend.err
stopped "SIGTERM" "$WIDE_PID" wide.err
stopped "SIGTERM" "$FRONTEND_PID" frontend.err
finish
