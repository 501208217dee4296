#!/usr/bin/env bash
# TCP tunnels into seam-sidecar's inbound listener (HTTP/2 CONNECT to "IP:port", RFC 9113 8.5), with
# sidecar_tunnel_client.py as the peer (mTLS, Debian's python3-h2) and as the TCP app behind it: the
# echo, both half-closes, 32 MB each way within the flow-control windows, the peer's RST_STREAM
# (idle and with bytes backed up) and the app's reset, every refusal (400, 403 for the sidecar's own
# ports, the policy's 403 with a rule by ports and with rules by paths or methods, 502, 504) with its
# access-log line and counter, CONNECT over HTTP/1.1 (400), the seam_tcp_* metrics. Afterwards every
# app connection has ended, the sidecar still runs with no crash in its log and exits 0 on SIGTERM.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sidecar_lib.sh"
source "$(dirname "$0")/sidecar_outbound_lib.sh"
TUNNEL=$(cd "$(dirname "$0")" && pwd)/sidecar_tunnel_client.py
cd "$WORK" || exit 1
# Under ASan, freed memory waits in a quarantine (256 MB by default) that counts as RSS growth: a
# small one, allowed for in the memory bound below.
QUARANTINE_MB=8
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=$QUARANTINE_MB"

PY=/usr/bin/python3 # Debian's, with python3-h2
MB=$((1024 * 1024))
BIG_MB=32
BIG=$((BIG_MB * MB))
RSS_LIMIT_KB=$((10 * 1024)) # a BIG transfer may grow the sidecar's peak RSS by less than this (it
if ldd "$SIDECAR" 2>/dev/null | grep -q libasan; then # holds some windows' worth, not the transfer) ...
    RSS_LIMIT_KB=$((RSS_LIMIT_KB + (QUARANTINE_MB + 2) * 1024)) # ... plus ASan's quarantine and shadow
fi
# check_growth NAME KB: a BIG transfer's peak-RSS growth of the sidecar is under RSS_LIMIT_KB
check_growth() {
    if [ "$2" -lt "$RSS_LIMIT_KB" ]; then
        pass "$1: the sidecar's peak RSS grew less than $((RSS_LIMIT_KB / 1024)) MB (+$2 kB)"
    else
        fail "$1: the sidecar's peak RSS grew less than $((RSS_LIMIT_KB / 1024)) MB" "+$2 kB"
    fi
}
REPORTER_ID=spiffe://$TD/ns/default/sa/reporter
AUDITOR_ID=spiffe://$TD/ns/default/sa/auditor

make_pair_certs
make_leaf reporter "$REPORTER_ID"
make_leaf auditor "$AUDITOR_ID"

# the TCP apps: ECHO_PORT admitted to the frontend by port, OTHER_PORT listening but admitted to
# nobody; the rule admits DEAD_PORT, where nothing listens, and STUCK_PORT, where a connect is never
# answered
ECHO_PORT=$(free_port)
OTHER_PORT=$(free_port)
DEAD_PORT=$(free_port)
STUCK_PORT=$(free_port)
APP_TIMEOUT_S=2
start_bg echo "$PY" "$TUNNEL" server "$ECHO_PORT" "$WORK/echo-events.log"
start_bg other "$PY" "$TUNNEL" server "$OTHER_PORT" "$WORK/other-events.log"
start_bg stuck "$PY" "$TUNNEL" stuck "$STUCK_PORT"
wait_port "$ECHO_PORT" 10
wait_port "$OTHER_PORT" 10
for ((i = 0; i < 100; i++)); do
    grep -q '^stuck after' stuck.log && break
    sleep 0.1
done
check_match "a listener that answers no connect (its accept queue full)" '^stuck after [0-9]+$' "$(cat stuck.log)"
# the HTTP app, for the rules that name paths or methods
APP_PORT=$(free_port)
start_app "$APP_PORT"

cat >policy.json <<EOF
{"mode": "enforce", "default": "deny",
 "rules": [{"name": "frontend-tcp", "from": ["$CLIENT_ID"], "ports": [$ECHO_PORT, $DEAD_PORT, $STUCK_PORT]},
           {"name": "reporter-api", "from": ["$REPORTER_ID"], "paths": ["/api/*"]},
           {"name": "auditor-get", "from": ["$AUDITOR_ID"], "methods": ["GET"]}]}
EOF
echo '{"routes": []}' >routes.json
IN_PORT=$(free_port)
ADMIN_PORT=$(free_port)
OUT_PORT=$(free_port)
PROBE_PORT=$(free_port)
start_sidecar backend --inbound "127.0.0.1:$IN_PORT" --app "127.0.0.1:$APP_PORT" --policy policy.json \
    --outbound "127.0.0.1:$OUT_PORT" --routes routes.json --probe-listen "127.0.0.1:$PROBE_PORT" \
    --app-timeout ${APP_TIMEOUT_S}s
BACKEND_PID=$SC_PID
wait_port "$IN_PORT" 10
wait_port "$OUT_PORT" 10
wait_port "$PROBE_PORT" 10

ALLOW='seam_tcp_connections_total{direction="inbound",decision="allow"}'
DENY='seam_tcp_connections_total{direction="inbound",decision="deny"}'
BYTES='seam_tcp_bytes_total{direction="inbound"}'
ALLOWED=0 # tunnels the policy allowed so far, as the test counts them
DENIED=0  # HTTP/2 CONNECTs refused before the policy or by it

# tunnel WHO MODE AUTHORITY ARGS...: the client as WHO against the inbound listener (at most 3 min)
tunnel() {
    local who=$1 mode=$2 authority=$3
    shift 3
    timeout 180 "$PY" "$TUNNEL" "$mode" 127.0.0.1 "$IN_PORT" "$WORK/$who.pem" "$WORK/$who.key" \
        "$WORK/ca/bundle.pem" "$authority" "$@" 2>>client.err
}
# access-log lines (the sidecar's stdout) so far; log_after N [NEEDLE]: the first line after the first
# N (that holds NEEDLE), waiting at most 5 s for it. A request's line is written after its answer, so
# one made just before N was counted may still come after it: a NEEDLE picks the line wanted.
log_count() {
    wc -l <backend.log
}
log_after() {
    local i line
    for ((i = 0; i < 50; i++)); do
        line=$(tail -n +"$(($1 + 1))" backend.log | grep -F -m1 -- "${2:-}")
        [ -n "$line" ] && break
        sleep 0.1
    done
    echo "$line"
}
# fields LINE: "protocol status decision rule error" of an access-log line ("-" for an absent field)
fields() {
    jq -r '[.protocol, (.status | tostring), .decision, .rule, .error] | map(. // "-") | join(" ")' <<<"$1" 2>/dev/null
}
# bytes LINE: "bytes_sent bytes_received" of an access-log line
bytes() {
    jq -r '"\(.bytes_sent) \(.bytes_received)"' <<<"$1" 2>/dev/null
}
# accepted FILE: the connections an app accepted so far (wait_port's probe among them); the next
# tunnel's connection to it is "conn $(($(accepted FILE) + 1))"
accepted() {
    grep -c ' accepted$' "$1"
}
# wait_event FILE REGEX: at most 10 s until a line of FILE matches; prints it
wait_event() {
    local i line
    for ((i = 0; i < 100; i++)); do
        line=$(grep -E -m1 "$2" "$1")
        [ -n "$line" ] && break
        sleep 0.1
    done
    echo "$line"
}
# counted NAME: the allow and deny counters equal ALLOWED and DENIED (waiting at most 5 s)
counted() {
    check "$1: seam_tcp_connections_total inbound allow, deny" "$ALLOWED $DENIED" \
        "$(wait_metric "$ALLOW" "$ALLOWED") $(wait_metric "$DENY" "$DENIED")"
}

# --- 1. an echo through one tunnel; the client's END_STREAM is the app's EOF, and the app's answer
# after it comes back with the app's close as END_STREAM
mark=$(log_count)
conn=$(($(accepted echo-events.log) + 1))
line=$(tunnel frontend echo "127.0.0.1:$ECHO_PORT" "hello tunnel")
ALLOWED=$((ALLOWED + 1))
check "echo: 200, the line comes back, the app's answer to the half-close, then END_STREAM" \
    '200 echo=[hello tunnel\n] reply=[got 13 bytes\n] end=END_STREAM' "$line"
check "echo: the app saw the client's END_STREAM as EOF after the 13 bytes" "ECHO eof after 13 bytes" \
    "$(wait_event echo-events.log "^conn $conn ECHO " | cut -d' ' -f3-7)"
entry=$(log_after "$mark")
check "echo: access log protocol, status, decision, rule, error" "tcp 200 allow frontend-tcp -" "$(fields "$entry")"
check "echo: access log bytes_sent (app to peer), bytes_received (peer to app)" "26 18" "$(bytes "$entry")"
check_contains "echo: access log names the peer" "\"peer_id\":\"$CLIENT_ID\"" "$entry"
counted "echo"

# --- 2. BIG_MB MB each way through one tunnel each, the client within the windows; the sidecar holds
# a window's worth, not the transfer
base=$(vmhwm "$BACKEND_PID")
mark=$(log_count)
conn=$(($(accepted echo-events.log) + 1))
line=$(tunnel frontend upload "127.0.0.1:$ECHO_PORT" "$BIG")
ALLOWED=$((ALLOWED + 1))
growth=$(($(vmhwm "$BACKEND_PID") - base))
sha=$(sed -n 's/.* sha256=\([0-9a-f]*\) .*/\1/p' <<<"$line")
check "$BIG_MB MB up: 200, all sent, the app's count, END_STREAM" \
    "200 sent=$BIG reply=[got $BIG bytes\n] end=END_STREAM" "$(sed 's/ sha256=[0-9a-f]*//' <<<"$line")"
check "$BIG_MB MB up: the app got every byte intact (length and SHA-256 as sent)" "SINK eof after $BIG bytes sha256 $sha" \
    "$(wait_event echo-events.log "^conn $conn SINK " | cut -d' ' -f3-)"
entry=$(log_after "$mark")
check "$BIG_MB MB up: access log" "tcp 200 allow frontend-tcp -" "$(fields "$entry")"
check "$BIG_MB MB up: access log bytes" "$((${#BIG} + 11)) $((BIG + 5))" "$(bytes "$entry")"
check_growth "$BIG_MB MB up" "$growth"

base=$(vmhwm "$BACKEND_PID")
mark=$(log_count)
conn=$(($(accepted echo-events.log) + 1))
line=$(tunnel frontend download "127.0.0.1:$ECHO_PORT" "$BIG")
ALLOWED=$((ALLOWED + 1))
growth=$(($(vmhwm "$BACKEND_PID") - base))
check "$BIG_MB MB down: 200, every byte intact, the app's close as END_STREAM" \
    "200 received=$BIG intact=yes end=END_STREAM" "$line"
check "$BIG_MB MB down: the app sent it all and half-closed, then got the client's 4 bytes and END_STREAM as EOF" \
    "SOURCE sent $BIG bytes|SOURCE eof after 4 bytes" \
    "$(wait_event echo-events.log "^conn $conn SOURCE eof" >/dev/null; grep "^conn $conn SOURCE" echo-events.log | cut -d' ' -f3-7 | paste -sd'|')"
entry=$(log_after "$mark")
check "$BIG_MB MB down: access log" "tcp 200 allow frontend-tcp -" "$(fields "$entry")"
check "$BIG_MB MB down: access log bytes" "$BIG $((${#BIG} + 8 + 4))" "$(bytes "$entry")"
check_growth "$BIG_MB MB down" "$growth"
counted "$BIG_MB MB each way"

# --- 3. the client's RST_STREAM CANCEL mid-tunnel: the app's connection is reset; the mesh
# connection and the sidecar go on (a new tunnel on the same connection)
mark=$(log_count)
conn=$(($(accepted echo-events.log) + 1))
out=$(tunnel frontend reset "127.0.0.1:$ECHO_PORT" "to be cut")
ALLOWED=$((ALLOWED + 2))
check "reset: 200 and the echo, then the RST_STREAM" '200 echo=[to be cut\n] reset' "$(sed -n 1p <<<"$out")"
check "reset: the app's connection is reset (not closed) after the 10 bytes" "ECHO reset after 10 bytes" \
    "$(wait_event echo-events.log "^conn $conn ECHO " | cut -d' ' -f3-7)"
entry=$(log_after "$mark")
check_match "reset: access log (tcp, 200, allow, the rule)" '^tcp 200 allow frontend-tcp ' "$(fields "$entry")"
check "reset: access log bytes" "10 15" "$(bytes "$entry")"
check "reset: a new tunnel on the same connection works" \
    '200 echo=[to be cut again\n] reply=[got 16 bytes\n] end=END_STREAM' "$(sed -n 2p <<<"$out")"

# the same with bytes backed up both ways: the client takes none of the echo, so the sidecar can send
# it no more, stops reading the app, whose echo stops and so its reading; then the sidecar's window
# for the client closes too
mark=$(log_count)
conn=$(($(accepted echo-events.log) + 1))
out=$(tunnel frontend reset-busy "127.0.0.1:$ECHO_PORT" $((64 * MB)))
ALLOWED=$((ALLOWED + 2))
line=$(sed -n 1p <<<"$out")
check_match "busy reset: 200, bytes sent until the windows closed, then the RST_STREAM" '^200 sent=[0-9]+ reset$' "$line"
sent=$(sed -n 's/^200 sent=\([0-9]*\) reset$/\1/p' <<<"$line")
echo "# busy reset: the windows closed after ${sent:-?} bytes"
if [ -n "$sent" ] && [ "$sent" -gt 0 ] && [ "$sent" -lt $((64 * MB)) ]; then
    pass "busy reset: flow control stopped the client before its 64 MB were out (${sent} bytes)"
else
    fail "busy reset: flow control stopped the client before its 64 MB were out" "sent [${sent}]"
fi
check_match "busy reset: the app's connection is reset" '^conn [0-9]+ ECHO reset after [0-9]+ bytes' \
    "$(wait_event echo-events.log "^conn $conn ECHO ")"
entry=$(log_after "$mark")
check_match "busy reset: access log (tcp, 200, allow, the rule)" '^tcp 200 allow frontend-tcp ' "$(fields "$entry")"
check "busy reset: a new tunnel on the same connection works" \
    '200 echo=[after a busy reset\n] reply=[got 19 bytes\n] end=END_STREAM' "$(sed -n 2p <<<"$out")"

# the app resets its connection: the peer gets RST_STREAM after the bytes that came before it
mark=$(log_count)
line=$(tunnel frontend appreset "127.0.0.1:$ECHO_PORT")
ALLOWED=$((ALLOWED + 1))
check "app reset: 200, the app's last bytes, then RST_STREAM" '200 body=[bye\n] end=rst=2' "$line"
entry=$(log_after "$mark")
check "app reset: access log" "tcp 200 allow frontend-tcp app-reset" "$(fields "$entry")"
check "app reset: access log bytes" "4 6" "$(bytes "$entry")"
counted "after the resets"

# --- 4. refusals: the answer, the access-log line, the counter, and no connection to any app
# refused NAME WHO AUTHORITY STATUS BODY FIELDS COUNTER: an HTTP/2 CONNECT as WHO answered STATUS with
# BODY in its body; its access-log line's FIELDS; COUNTER (allow or deny) went up by one (502 and 504
# count as allow: the policy admitted them, the app was not there)
refused() {
    local name=$1 who=$2 authority=$3 status=$4 body=$5 want=$6 counter=$7 mark line entry apps
    mark=$(log_count)
    apps="$(accepted echo-events.log) $(accepted other-events.log)"
    line=$(tunnel "$who" connect "$authority")
    if [ "$counter" = allow ]; then ALLOWED=$((ALLOWED + 1)); else DENIED=$((DENIED + 1)); fi
    check "$name: $status" "$status" "${line%% *}"
    check_contains "$name: the answer says why" "$body" "$line"
    entry=$(log_after "$mark" "\"authority\":\"$authority\"")
    check "$name: access log protocol, status, decision, rule, error" "$want" "$(fields "$entry")"
    check_contains "$name: access log has the authority" "\"authority\":\"$authority\"" "$entry"
    counted "$name"
    check "$name: no connection reached an app" "$apps" "$(accepted echo-events.log) $(accepted other-events.log)"
}
BAD='a TCP tunnel is an HTTP/2 CONNECT to IP:port'
for authority in 127.0.0.1 127.0.0.1: 127.0.0.1:0 127.0.0.1:65536 127.0.0.1:70000 127.0.0.1:http 127.0.0.1:-80; do
    refused "authority $authority" frontend "$authority" 400 "$BAD" "tcp 400 - - bad-tunnel" deny
done
for own in "admin:$ADMIN_PORT" "inbound:$IN_PORT" "outbound:$OUT_PORT" "probe-listen:$PROBE_PORT"; do
    refused "the sidecar's --${own%%:*} port" frontend "127.0.0.1:${own#*:}" 403 \
        "forbidden: port ${own#*:} is the sidecar's own" "tcp 403 - - tunnel-to-sidecar" deny
done
refused "a port no rule admits" frontend "127.0.0.1:$OTHER_PORT" 403 \
    "denies $CLIENT_ID TCP to app port $OTHER_PORT (no rule matched: default deny)" "tcp 403 deny default -" deny
refused "an admitted port where nothing listens" frontend "127.0.0.1:$DEAD_PORT" 502 \
    "bad gateway: the app refused the tunnel's connection" "tcp 502 allow frontend-tcp app-connect-failed" allow
started=$(date +%s%N)
refused "an admitted port whose connect is never answered" frontend "127.0.0.1:$STUCK_PORT" 504 \
    "gateway timeout: the app did not accept the tunnel's connection in time" \
    "tcp 504 allow frontend-tcp app-connect-timeout" allow
elapsed_ms=$((($(date +%s%N) - started) / 1000000))
if [ "$elapsed_ms" -ge $((APP_TIMEOUT_S * 1000 - 100)) ] && [ "$elapsed_ms" -lt $((APP_TIMEOUT_S * 1000 + 8000)) ]; then
    pass "the 504 came after --app-timeout ${APP_TIMEOUT_S}s (${elapsed_ms} ms, with the checks)"
else
    fail "the 504 came after --app-timeout ${APP_TIMEOUT_S}s" "after ${elapsed_ms} ms"
fi
# a rule that names paths (or methods) is about HTTP: it admits the identity's requests, never a tunnel
check "a rule with paths only admits its HTTP requests" 200 \
    "$(code reporter --http2 "https://127.0.0.1:$IN_PORT/api/items")"
refused "a rule with paths only" reporter "127.0.0.1:$ECHO_PORT" 403 \
    "denies $REPORTER_ID TCP to app port $ECHO_PORT" "tcp 403 deny default -" deny
check "a rule with methods only admits its HTTP requests" 200 \
    "$(code auditor --http2 "https://127.0.0.1:$IN_PORT/anything")"
refused "a rule with methods only" auditor "127.0.0.1:$ECHO_PORT" 403 \
    "denies $AUDITOR_ID TCP to app port $ECHO_PORT" "tcp 403 deny default -" deny

# a refused CONNECT ends as any refused request does: its stream is reset after the answer, and what
# the peer still sends is dropped, not buffered (before, 100 refused streams held 27 MB open)
base=$(vmhwm "$BACKEND_PID")
mark=$(log_count)
line=$(tunnel frontend refused-many "127.0.0.1:$ADMIN_PORT" 100)
DENIED=$((DENIED + 100))
check_match "100 refused CONNECTs: each answered 403 and then reset (NO_ERROR)" '^status=403 ends=rst=0 taken=' "$line"
taken=${line##*taken=}
if [ "${taken:-999999999}" -le $((100 * 65536)) ]; then
    pass "100 refused CONNECTs: at most the initial windows were taken after the answers ($taken bytes)"
else
    fail "100 refused CONNECTs: at most the initial windows were taken after the answers" "$taken bytes"
fi
growth=$(($(vmhwm "$BACKEND_PID") - base))
if [ "$growth" -lt 8192 ]; then
    pass "100 refused CONNECTs: the sidecar's peak memory grew less than 8 MB ($growth KB)"
else
    fail "100 refused CONNECTs: the sidecar's peak memory grew less than 8 MB" "$growth KB"
fi
for ((i = 0; i < 50; i++)); do [ $(($(log_count) - mark)) -ge 100 ] && break; sleep 0.1; done
check "100 refused CONNECTs: their access-log lines are written at once" 100 "$(($(log_count) - mark))"
counted "100 refused CONNECTs"

# --- 5. CONNECT over HTTP/1.1 to an admitted port: 400, logged as the HTTP/1.1 request it is (the
# TCP counters do not move)
mark=$(log_count)
apps=$(accepted echo-events.log)
line=$(timeout 60 "$PY" "$TUNNEL" h1connect 127.0.0.1 "$IN_PORT" "$WORK/frontend.pem" "$WORK/frontend.key" \
    "$WORK/ca/bundle.pem" "127.0.0.1:$ECHO_PORT" 2>>client.err)
check "CONNECT over HTTP/1.1: ALPN http/1.1, 400" "http/1.1 400" "$(cut -d' ' -f1-2 <<<"$line")"
check_contains "CONNECT over HTTP/1.1: the answer says why" "$BAD" "$line"
entry=$(log_after "$mark")
check "CONNECT over HTTP/1.1: access log protocol, status, decision, rule, error" "http/1.1 400 - - bad-tunnel" \
    "$(fields "$entry")"
check "CONNECT over HTTP/1.1: no connection reached the app" "$apps" "$(accepted echo-events.log)"
counted "CONNECT over HTTP/1.1"

# --- 6. metrics: the counters as counted above, the bytes as the access log's tunnels moved
mark=$(log_count)
check "a last tunnel on a new connection" '200 echo=[still here\n] reply=[got 11 bytes\n] end=END_STREAM' \
    "$(tunnel frontend echo "127.0.0.1:$ECHO_PORT" "still here")"
ALLOWED=$((ALLOWED + 1))
log_after "$mark" >/dev/null
counted "in all ($ALLOWED allowed, $DENIED refused)"
logged=$(jq -s '[.[] | select(.protocol == "tcp") | .bytes_sent + .bytes_received] | add' backend.log)
moved=$(metric "$BYTES")
check "seam_tcp_bytes_total inbound is the sum of the access log's tunnel bytes" "$logged" "$moved"
if [ "${moved:-0}" -ge $((2 * BIG)) ] 2>/dev/null; then
    pass "seam_tcp_bytes_total inbound counts at least the 2 x $BIG_MB MB moved ($moved)"
else
    fail "seam_tcp_bytes_total inbound counts at least the 2 x $BIG_MB MB moved" "[$moved]"
fi
check "the access log has one tcp line per tunnel and refusal" "$((ALLOWED + DENIED))" \
    "$(jq -s '[.[] | select(.protocol == "tcp")] | length' backend.log)"

# --- 7. every connection the sidecar opened to the app ended; the sidecar lives, then stops cleanly
ended() {
    local i a e
    for ((i = 0; i < 50; i++)); do
        a=$(accepted echo-events.log)
        e=$(grep -c -E ' (eof|reset|error) after | RESET sent$' echo-events.log)
        [ "$a" = "$e" ] && break
        sleep 0.1
    done
    echo "$a $e"
}
check_match "every app connection ended (accepted, ended)" '^([0-9]+) \1$' "$(ended)"
survived "after the tunnels" "$BACKEND_PID" backend.err
stopped "SIGTERM" "$BACKEND_PID" backend.err
finish
