#!/usr/bin/env bash
# The data listeners' connection budget. An inbound sidecar limited to 256 descriptors takes 300
# idle TCP connections plus a handshake that trickles in a byte a second: the admin endpoint keeps
# answering, a request over an established mesh connection still reaches the app, a new connection
# is turned away at once and counted, the held ones are closed by the handshake deadline (which
# the trickle does not extend), and the open-connections gauge returns to where it started.
# Then --max-connections on the inbound listener (with --handshake-timeout) and on the outbound
# listener: exactly N connections are held, the rest closed at once and counted; the listener
# serves again once they are gone.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sidecar_lib.sh"
source "$(dirname "$0")/sidecar_outbound_lib.sh"
IDLE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/sidecar_idle_conns.py
cd "$WORK" || exit 1

REJECTED_IN='seam_connections_rejected_total{direction="inbound",reason="limit"}'
REJECTED_OUT='seam_connections_rejected_total{direction="outbound",reason="limit"}'
ACTIVE_IN='seam_connections_active{direction="inbound"}'
ACTIVE_OUT='seam_connections_active{direction="outbound"}'
LIMIT_IN='seam_connections_limit{direction="inbound"}'
TIMEOUTS_IN='seam_tls_handshake_errors_total{direction="inbound",reason="timeout"}'

# hold NAME PORT COUNT SECONDS [drip]: sidecar_idle_conns.py in the background (result in NAME.json);
# returns once its connections are open (at most 15 s).
hold() {
    local name=$1 i
    rm -f "$name.ready"
    python3 "$IDLE" "$2" "$3" "$4" "$WORK/$name.ready" ${5:-} >"$name.json" 2>"$name.err" &
    HOLD_PID=$!
    PIDS+=("$HOLD_PID")
    for ((i = 0; i < 150; i++)); do
        [ -s "$name.ready" ] && return 0
        sleep 0.1
    done
    fail "$name: connections opened within 15 s"
}
# field NAME KEY: one field of NAME.json
field() {
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1.json" "$2" 2>/dev/null
}
# within NAME VALUE LOW HIGH: passes when LOW <= VALUE <= HIGH (decimals allowed)
within() {
    if python3 -c 'import sys; v,lo,hi=map(float,sys.argv[1:]); sys.exit(0 if lo<=v<=hi else 1)' "$2" "$3" "$4" 2>/dev/null; then
        pass "$1"
    else
        fail "$1" "$2 is not within [$3, $4]"
    fi
}
ready_code() {
    curl -s -o /dev/null -w '%{http_code}' --max-time 3 "http://127.0.0.1:$1/ready"
}

# --- 1. descriptors: the backend sidecar runs with ulimit -n 256 and the default budget
cat >limited-sidecar <<EOF
#!/usr/bin/env bash
ulimit -n 256
exec "$SIDECAR" "\$@"
EOF
chmod +x limited-sidecar
SIDECAR=$WORK/limited-sidecar start_pair_backend
# a second frontend that has no mesh connection yet: it must open one during the flood
FRESH_PORT=$(free_port)
start_bg fresh "$SIDECAR" --cert frontend.pem --key frontend.key --bundle ca/bundle.pem --admin "127.0.0.1:$(free_port)" \
    --inbound off --outbound "127.0.0.1:$FRESH_PORT" --routes routes.json
FRESH_PID=$LAST_PID
start_frontend routes.json
wait_port "$FRESH_PORT" 10
check "before: a mesh request" 200 "$(out -H "host: $BACKEND_HOST" "http://127.0.0.1:$OUT_PORT/api/before")"
check "before: /ready" 200 "$(ready_code "$IN_ADMIN")"
LIMIT=$(imetric "$LIMIT_IN")
within "the inbound budget fits in 256 descriptors" "$LIMIT" 16 200
ACTIVE0=$(imetric "$ACTIVE_IN")
check "before: one inbound connection (the frontend's pooled one)" 1 "$ACTIVE0"
TIMEOUTS0=$(imetric "$TIMEOUTS_IN")

hold drip "$IN_PORT" 1 20 drip
DRIP_PID=$HOLD_PID
hold idle "$IN_PORT" 300 20
IDLE_PID=$HOLD_PID
check "flood: 300 connections opened" 300 "$(cat idle.ready | tr -d '\n')"
for i in 1 2 3; do
    check "flood: /ready answers 200 ($i)" 200 "$(ready_code "$IN_ADMIN")"
    sleep 0.3
done
check "flood: /metrics answers" 200 "$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "http://127.0.0.1:$IN_ADMIN/metrics")"
check "flood: the listener holds exactly its budget" "$LIMIT" "$(imetric "$ACTIVE_IN")"
REJECTED=$(imetric "$REJECTED_IN")
within "flood: the connections over the budget were counted" "$REJECTED" $((300 + 2 - LIMIT)) $((300 + 2 - LIMIT))
sleep 2.2 # the backend's idle app connection (2 s keep-alive) is gone: the request needs a new descriptor
check "flood: a request over the established mesh connection reaches the app" 200 \
    "$(out -H "host: $BACKEND_HOST" "http://127.0.0.1:$OUT_PORT/api/during")"
T=$( { mtls frontend --http2 -o /dev/null -w '%{http_code} %{time_total}' "https://127.0.0.1:$IN_PORT/api/new" 2>/dev/null; true; })
check "flood: a new mesh connection is turned away (no answer)" 000 "${T%% *}"
within "flood: ... at once, not left to time out" "${T##* }" 0 2
T=$(curl -sS --max-time 20 -o body -w '%{http_code} %{time_total}' -H "host: $BACKEND_HOST" \
    "http://127.0.0.1:$FRESH_PORT/api/fresh" 2>/dev/null)
check "flood: a frontend without a mesh connection gets 502" 502 "${T%% *}"
within "flood: ... at once, not after --upstream-timeout" "${T##* }" 0 2
echo "# fresh frontend during the flood: ${T##* } s: $(cat body)"
check_contains "flood: ... naming the cause" "upstream" "$(cat body)"
check "flood: the turned-away connections are counted" $((REJECTED + 2)) "$(imetric "$REJECTED_IN")"

wait "$IDLE_PID"
wait "$DRIP_PID"
HELD=$(field idle closed_later)
echo "# idle: $(cat idle.json); drip: $(cat drip.json); budget $LIMIT"
check "flood: every connection was closed by the server" 0 "$(field idle left_open)"
check "flood: held + turned away = 300" 300 $(($(field idle refused) + HELD))
check "flood: held = the budget less the pooled and trickling connections" $((LIMIT - 2)) "$HELD"
within "flood: held connections closed by the 10 s handshake deadline" "$(field idle last_later_s)" 9 13
check "trickle: closed by the server" 1 "$(field drip closed_later)"
within "trickle: at the handshake deadline, not extended by each byte" "$(field drip first_later_s)" 9 12
within "handshake timeouts counted" "$(imetric "$TIMEOUTS_IN")" $((TIMEOUTS0 + HELD + 1)) $((TIMEOUTS0 + HELD + 1))
check "after: the gauge is back where it started" "$ACTIVE0" "$(wait_metric "$ACTIVE_IN" "$ACTIVE0")"
check "after: /ready" 200 "$(ready_code "$IN_ADMIN")"
check "after: a new mesh connection is served" 200 "$(code frontend --http2 "https://127.0.0.1:$IN_PORT/api/new")"
check "after: a mesh request through the frontend" 200 "$(out -H "host: $BACKEND_HOST" "http://127.0.0.1:$OUT_PORT/api/after")"
check "after: the fresh frontend connects" 200 "$(out -H "host: $BACKEND_HOST" "http://127.0.0.1:$FRESH_PORT/api/after")"
# stopped here: part 3 starts a backend and a frontend of its own, whose logs take these names
stopped "descriptor budget" "$BACKEND_PID" backend.err
stopped "descriptor budget" "$FRONTEND_PID" frontend.err
stopped "descriptor budget" "$FRESH_PID" fresh.log

# --- 2. --max-connections on the inbound listener, with a short handshake deadline
ADMIN_PORT=$(free_port)
IN2_PORT=$(free_port)
start_sidecar inbound2 --inbound "127.0.0.1:$IN2_PORT" --app "127.0.0.1:$APP_PORT" --policy policy.json \
    --max-connections 10 --handshake-timeout 2s --threads 2
wait_port "$IN2_PORT" 10
check "inbound --max-connections 10: the limit gauge" 10 "$(metric "$LIMIT_IN")"
ACTIVE0=$(metric "$ACTIVE_IN") # wait_port's probe may still be closing
hold idle2 "$IN2_PORT" 20 6
check "inbound: ten held across two workers" 10 "$(wait_metric "$ACTIVE_IN" 10)"
check "inbound: /ready while full" 200 "$(ready_code "$ADMIN_PORT")"
wait "$HOLD_PID"
echo "# idle2: $(cat idle2.json)"
check "inbound: the other ten turned away at once" 10 "$(field idle2 refused)"
check "inbound: ... and counted" 10 "$(metric "$REJECTED_IN")"
check "inbound: ten closed later" 10 "$(field idle2 closed_later)"
within "inbound: ... by the 2 s handshake deadline" "$(field idle2 last_later_s)" 1.5 3.5
check "inbound: the gauge is back" 0 "$(wait_metric "$ACTIVE_IN" 0)"
check "inbound: served again" 200 "$(code frontend --http2 "https://127.0.0.1:$IN2_PORT/api/again")"
check_contains "inbound: the full listener is logged" "inbound listener full" "$(cat inbound2.err)"
stopped "inbound --max-connections" "$SC_PID" inbound2.err

# --- 3. --max-connections on the outbound listener (plain HTTP from the app)
start_backend
backend_routes >routes.json
start_frontend routes.json --max-connections 5
check "outbound --max-connections 5: a request" 200 "$(out -H "host: $BACKEND_HOST" "http://127.0.0.1:$OUT_PORT/api/x")"
check "outbound: the gauge is back to 0" 0 "$(ADMIN_PORT=$OUT_ADMIN wait_metric "$ACTIVE_OUT" 0)"
hold idle3 "$OUT_PORT" 10 4
check "outbound: five held" 5 "$(ometric "$ACTIVE_OUT")"
check "outbound: five turned away" 5 "$(ometric "$REJECTED_OUT")"
check "outbound: a request while full is refused (connection closed)" 000 \
    "$(out -H "host: $BACKEND_HOST" "http://127.0.0.1:$OUT_PORT/api/full")"
check "outbound: /ready while full" 200 "$(ready_code "$OUT_ADMIN")"
wait "$HOLD_PID"
echo "# idle3: $(cat idle3.json)"
check "outbound: the client saw five closed at once" 5 "$(field idle3 refused)"
check "outbound: the gauge is back after the idle connections closed" 0 "$(ADMIN_PORT=$OUT_ADMIN wait_metric "$ACTIVE_OUT" 0)"
check "outbound: served again" 200 "$(out -H "host: $BACKEND_HOST" "http://127.0.0.1:$OUT_PORT/api/again")"
check "outbound: six rejections in all" 6 "$(ometric "$REJECTED_OUT")"
survived "outbound --max-connections" "$FRONTEND_PID" frontend.err
survived "outbound --max-connections" "$BACKEND_PID" backend.err
finish
