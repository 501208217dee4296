#!/usr/bin/env bash
# seam-sidecar's command line: --help, --version, exit codes and one-line errors that
# name the flag or file, the --config file, and the admin and outbound listeners' loopback rule.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sidecar_lib.sh"
cd "$WORK" || exit 1

make_ca ca
make_leaf server "$SERVER_ID"
"$TESTCERT" --ca-dir ca --uri "$SERVER_ID" --not-before -7200 --not-after -3600 --out expired

# run NAME WANT_RC ARGS...: runs the sidecar (it must exit by itself), keeps stdout/stderr.
run() {
    local name=$1 want=$2
    shift 2
    timeout 10 "$SIDECAR" "$@" >out 2>err
    local rc=$?
    OUT=$(cat out)
    ERR=$(cat err)
    check "$name: exit code" "$want" "$rc"
}
one_line() {
    check "$1: one error line" 1 "$(grep -c . err)"
    check_contains "$1: names $2" "$2" "$ERR"
}
IDENT=(--cert server.pem --key server.key --bundle ca/bundle.pem)

run "--version" 0 --version
check_contains "--version prints the version" "seam-sidecar 0." "$OUT"
run "--help" 0 --help
check_contains "--help lists --policy" "--policy FILE" "$OUT"
check_contains "--help lists --drain-timeout" "--drain-timeout" "$OUT"
run "unknown flag" 2 --bogus
one_line "unknown flag" "--bogus"
run "no identity" 2 --inbound 127.0.0.1:1
one_line "no identity" "--cert, --key and --bundle"
run "bad --threads" 2 "${IDENT[@]}" --threads 0
one_line "bad --threads" "--threads"
run "bad --drain-timeout" 2 "${IDENT[@]}" --drain-timeout 5y
one_line "bad --drain-timeout" "--drain-timeout"
check_contains "--help lists --max-connections" "--max-connections N" "$(timeout 10 "$SIDECAR" --help)"
run "bad --max-connections" 2 "${IDENT[@]}" --max-connections 0
one_line "bad --max-connections" '--max-connections: "0" is not a number from 1 to 1000000'
run "--max-connections not a number" 2 "${IDENT[@]}" --max-connections many
one_line "--max-connections not a number" '--max-connections: "many" is not a number'
run "bad --handshake-timeout" 2 "${IDENT[@]}" --handshake-timeout 0s
one_line "bad --handshake-timeout" "--handshake-timeout: must be longer than 0"
run "bad --idle-timeout" 2 "${IDENT[@]}" --idle-timeout 0s
one_line "bad --idle-timeout" "--idle-timeout: must be longer than 0"
run "bad --detect-timeout" 2 "${IDENT[@]}" --detect-timeout 0s
one_line "bad --detect-timeout" "--detect-timeout: must be longer than 0"
run "bad --outbound-unknown" 2 "${IDENT[@]}" --outbound-unknown allow
one_line "bad --outbound-unknown" "--outbound-unknown allow: must be passthrough or deny"
run "non-loopback admin" 2 "${IDENT[@]}" --admin 0.0.0.0:15000
one_line "non-loopback admin" "--admin-allow-remote"
run "outbound without routes" 2 "${IDENT[@]}" --outbound 127.0.0.1:15001
one_line "outbound without routes" "needs --routes"
run "transparent without the outbound listener" 2 "${IDENT[@]}" --transparent
one_line "transparent without the outbound listener" "--transparent"

# the outbound listener forwards with the pod's identity: loopback only unless --outbound-allow-remote
echo "{\"routes\": [{\"host\": \"backend.default.svc\", \"upstream\": \"127.0.0.1:1\", \"identity\": \"$SERVER_ID\"}]}" >routes.json
run "non-loopback outbound" 2 "${IDENT[@]}" --inbound off --admin 127.0.0.1:$(free_port) --routes routes.json \
    --outbound 0.0.0.0:$(free_port)
one_line "non-loopback outbound" "--outbound-allow-remote"
check_contains "non-loopback outbound: names --outbound" "--outbound: 0.0.0.0:" "$ERR"
# outbound_serves NAME URL_HOST PORT ARGS...: the sidecar starts and its outbound listener, reached at
# http://URL_HOST:PORT, answers an unrouted request with 404; then the sidecar is stopped.
outbound_serves() {
    local name=$1 host=$2 port=$3 code=000 i
    shift 3
    start_bg "outbound-$port" "$SIDECAR" "${IDENT[@]}" --inbound off --admin 127.0.0.1:$(free_port) \
        --routes routes.json "$@"
    local pid=$LAST_PID
    for ((i = 0; i < 100; i++)); do
        code=$(curl -sg -o /dev/null -w '%{http_code}' --max-time 2 -H 'Host: unrouted.example' "http://$host:$port/")
        [ "$code" = 404 ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    check "$name: accepted, the outbound listener answers" 404 "$code"
    stop_pid "$pid"
}
P=$(free_port)
outbound_serves "0.0.0.0 with --outbound-allow-remote" 127.0.0.1 "$P" --outbound "0.0.0.0:$P" --outbound-allow-remote
P=$(free_port)
outbound_serves "127.0.0.1" 127.0.0.1 "$P" --outbound "127.0.0.1:$P"
P=$(free_port)
outbound_serves "[::1]" "[::1]" "$P" --outbound "[::1]:$P"

echo '{"routes": [{"host": "a", "upstream": "b:1", "identity": "nope"}]}' >bad-routes.json
run "bad routes file" 1 "${IDENT[@]}" --routes bad-routes.json --inbound off --admin 127.0.0.1:$(free_port) --outbound 127.0.0.1:$(free_port)
one_line "bad routes file" "routes[0].identity"
run "CA mode without a token file" 2 --ca-url https://127.0.0.1:15012 --ca-bundle ca/bundle.pem
one_line "CA mode without a token file" "--ca-url, --ca-bundle and --token-file are required together"
run "CA mode over plain http" 2 --ca-url http://127.0.0.1:15012 --ca-bundle ca/bundle.pem --token-file t
one_line "CA mode over plain http" "must be https://"
run "both identity sources" 2 "${IDENT[@]}" --ca-url https://127.0.0.1:15012 --ca-bundle ca/bundle.pem --token-file t
one_line "both identity sources" "give one of them"
echo seam-join-0123 >join.token
run "join token without --spiffe-id" 1 --ca-url https://127.0.0.1:1 --ca-bundle ca/bundle.pem --token-file join.token \
    --admin 127.0.0.1:$(free_port)
one_line "join token without --spiffe-id" "join.token: the token is not a Kubernetes service-account token"
run "missing token file" 1 --ca-url https://127.0.0.1:1 --ca-bundle ca/bundle.pem --token-file nope.token \
    --admin 127.0.0.1:$(free_port)
one_line "missing token file" "--token-file nope.token: cannot read the file"
run "missing cert file" 1 --cert nope.pem --key server.key --bundle ca/bundle.pem --inbound off --admin 127.0.0.1:$(free_port)
one_line "missing cert file" "nope.pem"
run "expired own certificate" 1 --cert expired.pem --key expired.key --bundle ca/bundle.pem --inbound off \
    --admin 127.0.0.1:$(free_port)
one_line "expired own certificate" "expired"
run "key of another certificate" 1 --cert server.pem --key expired.key --bundle ca/bundle.pem --inbound off \
    --admin 127.0.0.1:$(free_port)
check_contains "key mismatch names the files" "server.pem" "$ERR"
printf '{"rules": [{"name": "a", "methods": ["get"]}]}' >bad-policy.json
run "bad policy at start" 1 "${IDENT[@]}" --inbound off --admin 127.0.0.1:$(free_port) --policy bad-policy.json
one_line "bad policy at start" "bad-policy.json: rules[0].methods[0]"
printf '{"threads": 2, "unknown": 1}' >bad-config.json
run "bad --config key" 2 --config bad-config.json
one_line "bad --config key" "bad-config.json: unknown: unknown key"
BUSY=$(free_port)
start_bg busy python3 -c "import socket,time; s=socket.socket(); s.bind(('127.0.0.1',$BUSY)); s.listen(); time.sleep(30)"
wait_port "$BUSY" 10
run "inbound port in use" 1 "${IDENT[@]}" --inbound 127.0.0.1:$BUSY --admin 127.0.0.1:$(free_port)
one_line "inbound port in use" "--inbound 127.0.0.1:$BUSY"

# a --config file with the flags' keys; a flag overrides it
ADMIN_PORT=$(free_port)
IN_PORT=$(free_port)
cat >config.json <<EOF
{"cert": "$WORK/server.pem", "key": "$WORK/server.key", "bundle": "$WORK/ca/bundle.pem",
 "inbound": "127.0.0.1:$IN_PORT", "app": "127.0.0.1:1", "admin": "127.0.0.1:$ADMIN_PORT",
 "threads": 3, "drain-timeout": "2s", "max-connections": 500}
EOF
start_bg cfg "$SIDECAR" --config config.json --threads 2
CFG_PID=$LAST_PID
wait_port "$ADMIN_PORT" 10
CONFIG=$(curl -s "http://127.0.0.1:$ADMIN_PORT/config")
check_contains "/config: flag wins over file" '"threads": 2' "$CONFIG"
check_contains "/config: file value kept" '"drain-timeout": "2s"' "$CONFIG"
check_contains "/config: cert path" "\"cert\": \"$WORK/server.pem\"" "$CONFIG"
check_contains "/config: max-connections from the file" '"max-connections": 500' "$CONFIG"
check_contains "/config: the default handshake deadline" '"handshake-timeout": "10s"' "$CONFIG"
check "/metrics: the inbound budget" 500 "$(metric 'seam_connections_limit{direction="inbound"}')"
wait_port "$IN_PORT" 10 && pass "inbound from --config listens" || fail "inbound from --config listens"
check "no policy: /policy says so" 1 "$(curl -s "http://127.0.0.1:$ADMIN_PORT/policy" | grep -c 'every request is denied')"
kill -TERM "$CFG_PID"
wait "$CFG_PID"
check "SIGTERM exit code" 0 "$?"

finish
