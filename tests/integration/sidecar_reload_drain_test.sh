#!/usr/bin/env bash
# seam-sidecar policy reloads (file watch with a ConfigMap-style symlink swap, SIGHUP,
# a broken file that must not replace a good one, audit mode) and the SIGTERM drain.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sidecar_lib.sh"
cd "$WORK" || exit 1

APP_PORT=$(free_port)
IN_PORT=$(free_port)
ADMIN_PORT=$(free_port)
URL=https://127.0.0.1:$IN_PORT
FRONTEND=spiffe://$TD/ns/default/sa/frontend

make_ca ca
make_leaf server "$SERVER_ID"
make_leaf frontend "$FRONTEND"

# A Kubernetes ConfigMap volume: the file is a symlink through "..data", which is itself
# a symlink to a timestamped directory; an update writes a new directory and renames a
# new "..data" link over the old one.
mkdir -p policy-vol
# publish NAME: makes $WORK/NAME.json the content of the volume, the way the kubelet does.
publish() {
    local dir=..$(date +%s%N)
    mkdir "policy-vol/$dir"
    cp "$1.json" "policy-vol/$dir/policy.json"
    ln -s "$dir" policy-vol/..data_tmp
    mv -T policy-vol/..data_tmp policy-vol/..data
}
cat >api-only.json <<EOF
{"mode": "enforce", "default": "deny",
 "rules": [{"name": "api", "from": ["$FRONTEND"], "paths": ["/api/*"]}]}
EOF
cat >audit.json <<EOF
{"mode": "audit", "default": "deny",
 "rules": [{"name": "api", "from": ["$FRONTEND"], "paths": ["/api/*"]}]}
EOF
cat >broken.json <<EOF
{"mode": "enforce", "default": "deny",
 "rules": [{"name": "api", "from": ["$FRONTEND"], "paths": ["/api/*"]},
           {"name": "bad", "from": ["spiffe://Cluster.Local/ns/x"]}]}
EOF
cat >everything.json <<EOF
{"mode": "enforce", "rules": [{"name": "all", "from": ["spiffe://$TD/*"]}]}
EOF
publish api-only
ln -s ..data/policy.json policy-vol/policy.json

start_app "$APP_PORT"
start_sidecar sc --inbound "127.0.0.1:$IN_PORT" --app "127.0.0.1:$APP_PORT" --policy "$WORK/policy-vol/policy.json" \
    --drain-timeout 8s --threads 2
wait_port "$IN_PORT" 10

RELOADS='seam_policy_reloads_total{result="success"}'
FAILURES='seam_policy_reloads_total{result="failure"}'
check "enforce: /api allowed" 200 "$(code frontend --http2 "$URL/api/a")"
check "enforce: /other denied" 403 "$(code frontend --http2 "$URL/other")"

# --- file change through the symlink swap: audit mode
publish audit
check "reload after the ..data swap" 1 "$(wait_metric "$RELOADS" 1)"
check "audit: would-deny passes" 200 "$(code frontend --http2 "$URL/other")"
check "audit: counted as audit_deny" 1 "$(wait_metric 'seam_authz_decisions_total{decision="audit_deny"}' 1)"
check_contains "audit: logged as audit_deny" '"decision":"audit_deny"' "$(grep '"path":"/other"' sc.log | tail -1)"
check_contains "/policy shows audit mode" '"mode": "audit"' "$(curl -s "http://127.0.0.1:$ADMIN_PORT/policy")"

# --- a broken file keeps the previous policy
publish broken
check "broken policy refused" 1 "$(wait_metric "$FAILURES" 1)"
check_contains "refusal names file, rule and field" "policy-vol/policy.json: rules[1].from[0]: not a SPIFFE ID" "$(cat sc.err)"
check "old (audit) policy still in force" 200 "$(code frontend --http2 "$URL/other")"
check "reload count unchanged" 1 "$(metric "$RELOADS")"
printf '{"mode": "enforce", "rules": [' >policy-syntax.json
cp policy-syntax.json syntax.json
publish syntax
check "syntax error refused" 2 "$(wait_metric "$FAILURES" 2)"
check_contains "syntax error names the line" "policy.json:1: invalid JSON" "$(cat sc.err)"

# --- SIGHUP reloads too (here: back to enforce)
cp api-only.json "$(readlink -f policy-vol/policy.json)"
kill -HUP "$SC_PID"
check "SIGHUP reload" 2 "$(wait_metric "$RELOADS" 2)"
check "enforce again: /other denied" 403 "$(code frontend --http2 "$URL/other")"
check "sidecar survived SIGHUP" 200 "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$ADMIN_PORT/live")"

# --- static certificate files: a renewed certificate is picked up, another identity is refused
serial() { curl -s "http://127.0.0.1:$ADMIN_PORT/certs" | python3 -c 'import json,sys; print(json.load(sys.stdin)["serial"])'; }
SERIAL0=$(serial)
"$CERTS" issue --ca-dir ca --spiffe-id "$SERVER_ID" --out renewed >/dev/null
cp renewed.key server.key
cp renewed.pem server.pem
check "renewed certificate loaded" 1 "$(wait_metric 'seam_cert_rotations_total{result="success"}' 1)"
SERIAL1=$(serial)
[ -n "$SERIAL1" ] && [ "$SERIAL1" != "$SERIAL0" ] && pass "/certs shows the new serial" || fail "/certs shows the new serial" "$SERIAL0 -> $SERIAL1"
check "new serial is the renewed file's" "$SERIAL1" "$("$CERTS" inspect renewed.pem | grep -m1 'serial:' | awk '{print $NF}')"
check "new handshakes work" 200 "$(code frontend --http2 "$URL/api/after-renewal")"
SERVED=$(openssl s_client -connect 127.0.0.1:$IN_PORT -cert frontend.pem -cert_chain frontend.pem -key frontend.key </dev/null 2>/dev/null |
    openssl x509 -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f' | sed 's/^0*//')
check "the listener serves the renewed certificate" "$(echo "$SERIAL1" | sed "s/^0*//")" "$SERVED"
"$CERTS" issue --ca-dir ca --spiffe-id spiffe://$TD/ns/default/sa/impostor --out impostor >/dev/null
cp impostor.pem server.pem
cp impostor.key server.key
check "another identity refused" 1 "$(wait_metric 'seam_cert_rotations_total{result="failure"}' 1)"
check_contains "refusal names both identities" "names spiffe://$TD/ns/default/sa/impostor, but this sidecar is $SERVER_ID" "$(cat sc.err)"
check "serial unchanged after the refusal" "$SERIAL1" "$(serial)"
check "still serving with the renewed certificate" 200 "$(code frontend --http2 "$URL/api/after-impostor")"
check_contains "/certs counts the failure" '"rotation_failures": 1' "$(curl -s "http://127.0.0.1:$ADMIN_PORT/certs")"
cp renewed.pem server.pem
cp renewed.key server.key

# --- SIGTERM with requests in flight: none is lost, /ready turns 503, exit 0
publish everything
check "prefix-of-trust-domain policy" 3 "$(wait_metric "$RELOADS" 3)"
INFLIGHT=8
ALLOW0=$(metric 'seam_authz_decisions_total{decision="allow"}')
for ((i = 0; i < INFLIGHT; i++)); do
    proto=--http2
    [ $((i % 2)) -eq 1 ] && proto=--http1.1
    mtls frontend "$proto" -o "inflight-$i.body" -w '%{http_code}' "$URL/slow?ms=1500" >"inflight-$i.code" 2>"inflight-$i.err" &
    PIDS+=("$!")
done
# every request has reached the app before the signal
for ((i = 0; i < 50; i++)); do
    [ "$(metric 'seam_authz_decisions_total{decision="allow"}')" -ge $((ALLOW0 + INFLIGHT)) ] && break
    sleep 0.1
done
kill -TERM "$SC_PID"
sleep 0.3
check "/ready is 503 while draining" 503 "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$ADMIN_PORT/ready")"
check_contains "/ready says why" "draining" "$(curl -s --max-time 2 "http://127.0.0.1:$ADMIN_PORT/ready")"
NEW=$(code frontend --http2 "$URL/api/late")
check "new connections refused while draining" 000 "$NEW"
wait "$SC_PID"
check "exit code 0 after drain" 0 "$?"
OK=0
for ((i = 0; i < INFLIGHT; i++)); do
    wait "${PIDS[-1 - i]}" 2>/dev/null
    [ "$(cat "inflight-$i.code")" = 200 ] && OK=$((OK + 1))
done
check "in-flight requests all finished" "$INFLIGHT" "$OK"
check_contains "drain logged" "drained; exiting" "$(cat sc.err)"

# --- drain deadline: a request longer than --drain-timeout is cut, exit is still 0 and prompt
start_sidecar sc2 --inbound "127.0.0.1:$IN_PORT" --app "127.0.0.1:$APP_PORT" --policy "$WORK/everything.json" \
    --drain-timeout 500ms --threads 2
wait_port "$IN_PORT" 10
mtls frontend --http2 -o /dev/null "$URL/slow?ms=5000" 2>/dev/null &
PIDS+=("$!")
sleep 0.5
START=$(date +%s%N)
kill -TERM "$SC_PID"
wait "$SC_PID"
RC=$?
ELAPSED_MS=$((($(date +%s%N) - START) / 1000000))
check "exit 0 at the drain deadline" 0 "$RC"
[ "$ELAPSED_MS" -lt 3000 ] && pass "drain deadline honoured (${ELAPSED_MS} ms)" || fail "drain deadline honoured" "$ELAPSED_MS ms"

finish
