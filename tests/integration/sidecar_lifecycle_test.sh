#!/usr/bin/env bash
# Certificates from seam-ca in two real sidecars on 127.0.0.1: bootstrap with a
# Kubernetes-style token and with a join token, renewal under continuous
# traffic (20 s certificates), CA outages before and after expiry, a root
# rotation, POST /rotate, and no private key anywhere the sidecar writes.
# SIDECAR_LIFECYCLE_SECONDS shortens or lengthens the steady phase (default 90).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ca_common.sh"
source "$(dirname "$0")/sidecar_lib.sh" # TD=cluster.local from here on

STEADY=${SIDECAR_LIFECYCLE_SECONDS:-90}
TTL=20s
ISS=https://kubernetes.default.svc.cluster.local
FRONT_ID=spiffe://$TD/ns/default/sa/frontend
BACK_ID=spiffe://$TD/ns/default/sa/backend
cd "$WORK" || exit 1

# --- a CA, a cluster's service-account signing key, tokens -----------------------------
make_ca_dir ca "$TD"
make_ca_dir ca2 "$TD" # the next root, for the rotation at the end
openssl genrsa -out sa.key 2048 2>/dev/null
openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
python3 "$CA_JWT_PY" jwks jwks.json sa.pub:k1
NOW=$(date +%s)
# a projected token as the kubelet writes it: audience seam-ca, one hour
python3 "$CA_JWT_PY" mint --sign rsa:sa.key --header '{"alg":"RS256","kid":"k1"}' --claims \
    "{\"aud\":[\"seam-ca\"],\"exp\":$((NOW + 3600)),\"iat\":$NOW,\"nbf\":$NOW,\"iss\":\"$ISS\",\"sub\":\"system:serviceaccount:default:backend\",\"kubernetes.io\":{\"namespace\":\"default\",\"serviceaccount\":{\"name\":\"backend\",\"uid\":\"u1\"}}}" \
    >backend.token
: >join-tokens.jsonl
"$SEAM_CA" token create --join-tokens join-tokens.jsonl --spiffe-id "$FRONT_ID" >frontend.token

CA_PORT=$(free_port)
CA_URL=https://127.0.0.1:$CA_PORT
# run_ca DIR: seam-ca from DIR on the fixed port (restarts keep the journal and the tokens); sets CA_PID.
run_ca() {
    start_bg "ca-$(basename "$1")-$RANDOM" "$SEAM_CA" --listen "127.0.0.1:$CA_PORT" --ca-dir "$1" --trust-domain "$TD" \
        --journal journal.jsonl --join-tokens join-tokens.jsonl --jwks jwks.json --issuer "$ISS" --ttl $TTL \
        --rate-limit 600 --rate-burst 100
    CA_PID=$LAST_PID
    wait_port "$CA_PORT" 15
}

# certs_field ADMIN_PORT FIELD: one field of /certs (chain/bundle: the count; null: "null").
certs_field() {
    curl -s --max-time 5 "http://127.0.0.1:$1/certs" | python3 -c '
import json, sys
try:
    v = json.load(sys.stdin).get(sys.argv[1])
except Exception:
    v = "unreadable"
print(len(v) if isinstance(v, list) else ("null" if v is None else v))' "$2"
}

# ready ADMIN_PORT: the /ready status code.
ready() {
    curl -s --max-time 5 -o "$WORK/ready.body" -w '%{http_code}' "http://127.0.0.1:$1/ready"
}

# wait_for SECONDS CMD...: retries CMD (a test) every 0.2 s until it succeeds; 0 when it did.
wait_for() {
    local limit=$1 i
    shift
    for ((i = 0; i < limit * 5; i++)); do
        "$@" && return 0
        sleep 0.2
    done
    return 1
}
is_ready() { [ "$(ready "$1")" = 200 ]; }
not_ready() { [ "$(ready "$1")" = 503 ]; }
serial_is_not() { local s; s=$(certs_field "$1" serial); [ "$s" != "$2" ] && [ "$s" != null ] && [ "$s" != unreadable ]; }
field_is() { [ "$(certs_field "$1" "$2")" = "$3" ]; }
field_at_least() { local v; v=$(certs_field "$1" "$2"); [[ $v =~ ^[0-9]+$ ]] && [ "$v" -ge "$3" ]; }

# request: one request app -> frontend sidecar -> backend sidecar -> app; prints the status code.
request() {
    curl -sS --max-time 10 -o "$WORK/body" -w '%{http_code}' -H "Host: backend.default.svc" \
        "http://127.0.0.1:$OUT_PORT/api/hello" 2>"$WORK/curl.err"
}

# traffic SECONDS OUT: requests through the pair for SECONDS, one status per line in OUT; every tenth
# request waits past the frontend's idle timeout, so the next one opens a new mesh connection
# and handshakes with whatever certificates are current then.
traffic() {
    local end=$(($(date +%s) + $1)) i=0
    while [ "$(date +%s)" -lt "$end" ] && [ "$i" -lt 100000 ]; do
        curl -s --max-time 10 -o /dev/null -w '%{http_code}\n' -H "Host: backend.default.svc" \
            "http://127.0.0.1:$OUT_PORT/api/loop" >>"$2" 2>/dev/null || echo "curl-failed" >>"$2"
        i=$((i + 1))
        if ((i % 10 == 0)); then sleep 0.8; else sleep 0.1; fi
    done
}

# serials SECONDS OUT ADMIN...: samples each sidecar's serial once a second.
serials() {
    local end=$(($(date +%s) + $1)) out=$2 admin
    shift 2
    while [ "$(date +%s)" -lt "$end" ]; do
        for admin in "$@"; do echo "$admin $(certs_field "$admin" serial)" >>"$out"; done
        sleep 1
    done
}

# --- bootstrap -----------------------------------------------------------------------------
APP_PORT=$(free_port)
IN_PORT=$(free_port)
IN_ADMIN=$(free_port)
OUT_PORT=$(free_port)
OUT_ADMIN=$(free_port)
start_app "$APP_PORT"
cat >policy.json <<EOF
{"mode": "enforce", "default": "deny", "rules": [{"name": "frontend-api", "from": ["$FRONT_ID"], "paths": ["/api/*"]}]}
EOF
cat >routes.json <<EOF
{"routes": [{"host": "backend.default.svc", "upstream": "127.0.0.1:$IN_PORT", "identity": "$BACK_ID"}]}
EOF

# The backend starts before the CA: no certificate, so no listener and /ready says why.
"$SIDECAR" --ca-url "$CA_URL" --ca-bundle ca/bundle.pem --token-file backend.token --bundle-refresh 2s \
    --inbound "127.0.0.1:$IN_PORT" --app "127.0.0.1:$APP_PORT" --policy policy.json --threads 2 \
    --admin "127.0.0.1:$IN_ADMIN" >backend.log 2>backend.err &
BACKEND_PID=$!
PIDS+=("$BACKEND_PID")
wait_port "$IN_ADMIN" 10
wait_for 5 grep -q "refused the connection" backend.err
check "before the first certificate: /ready 503" 503 "$(ready "$IN_ADMIN")"
check_contains "... naming the reason" "no certificate from seam-ca yet (unreachable: 127.0.0.1:$CA_PORT refused" \
    "$(cat ready.body)"
(exec 3<>"/dev/tcp/127.0.0.1/$IN_PORT") 2>/dev/null
check "before the first certificate: the inbound port refuses connections" 1 $?
check "the identity comes from the token's subject" "$BACK_ID" "$(certs_field "$IN_ADMIN" spiffe_id)"

run_ca ca || exit 1
wait_for 30 is_ready "$IN_ADMIN"
check "the backend bootstraps with the Kubernetes token once seam-ca is up: /ready 200" 200 "$(ready "$IN_ADMIN")"
wait_port "$IN_PORT" 5
BOOT_FAILURES=$(certs_field "$IN_ADMIN" rotation_failures)
check "the CA journal shows a JWT credential" 1 "$(grep -c '"credential":"jwt"' journal.jsonl)"

"$SIDECAR" --ca-url "$CA_URL" --ca-bundle ca/bundle.pem --token-file frontend.token --spiffe-id "$FRONT_ID" \
    --bundle-refresh 2s --inbound off --outbound "127.0.0.1:$OUT_PORT" --routes routes.json \
    --upstream-idle-timeout 500ms --admin "127.0.0.1:$OUT_ADMIN" >frontend.log 2>frontend.err &
FRONTEND_PID=$!
PIDS+=("$FRONTEND_PID")
wait_port "$OUT_ADMIN" 10
wait_for 20 is_ready "$OUT_ADMIN"
check "the frontend bootstraps with a join token: /ready 200" 200 "$(ready "$OUT_ADMIN")"
wait_port "$OUT_PORT" 5
check "the CA journal shows the join token" 1 "$(grep -c '"credential":"join_token"' journal.jsonl)"
check "frontend /certs names its identity" "$FRONT_ID" "$(certs_field "$OUT_ADMIN" spiffe_id)"
check "frontend /certs: mode ca" ca "$(certs_field "$OUT_ADMIN" mode)"
check "frontend /certs: chain of leaf + intermediate" 2 "$(certs_field "$OUT_ADMIN" chain)"
check "frontend /certs: one root in the bundle" 1 "$(certs_field "$OUT_ADMIN" bundle)"
check_match "frontend /certs: a next rotation time" '^20[0-9-]+T[0-9:]+Z$' "$(certs_field "$OUT_ADMIN" next_rotation)"
check_match "frontend /certs: expires within the 20 s ttl" '^(1[0-9]|20|[0-9])$' "$(certs_field "$OUT_ADMIN" expires_in_seconds)"

check "app -> frontend -> backend -> app: 200" 200 "$(request)"
check_contains "the app saw the frontend's identity" "URI=$FRONT_ID" "$(cat body)"

# --- 20 s certificates under continuous traffic ----------------------------------------------
START_IN=$(certs_field "$IN_ADMIN" serial)
START_OUT=$(certs_field "$OUT_ADMIN" serial)
traffic "$STEADY" steady.codes &
TRAFFIC_PID=$!
serials "$STEADY" steady.serials "$IN_ADMIN" "$OUT_ADMIN" &
SERIALS_PID=$!
wait "$TRAFFIC_PID" "$SERIALS_PID"
total=$(wc -l <steady.codes)
bad=$(grep -vc '^200$' steady.codes)
check "continuous traffic for ${STEADY}s: zero failures (of $total)" 0 "$bad"
[ "$total" -ge "$STEADY" ] && pass "continuous traffic: at least one request a second ($total)" ||
    fail "continuous traffic: at least one request a second" "$total requests"
in_serials=$(awk -v p="$IN_ADMIN" '$1 == p {print $2}' steady.serials | grep -v null | sort -u | wc -l)
out_serials=$(awk -v p="$OUT_ADMIN" '$1 == p {print $2}' steady.serials | grep -v null | sort -u | wc -l)
min_changes=$((STEADY / 30)) # at least 3 in 90 s
[ "$((in_serials - 1))" -ge "$min_changes" ] && pass "the backend's serial changed $((in_serials - 1)) times" ||
    fail "the backend's serial changed at least $min_changes times" "$((in_serials - 1))"
[ "$((out_serials - 1))" -ge "$min_changes" ] && pass "the frontend's serial changed $((out_serials - 1)) times" ||
    fail "the frontend's serial changed at least $min_changes times" "$((out_serials - 1))"
renewed=$(grep -c '"credential":"client_cert"' journal.jsonl)
[ "$renewed" -ge $((2 * min_changes)) ] && pass "the CA saw $renewed mTLS renewals" || fail "mTLS renewals" "$renewed"
check "no rotation failures since the bootstrap (backend)" "$BOOT_FAILURES" "$(certs_field "$IN_ADMIN" rotation_failures)"
ADMIN_PORT=$IN_ADMIN
ok=$(metric 'seam_cert_rotations_total{result="success"}')
[ "$ok" -ge $((min_changes + 1)) ] && pass "seam_cert_rotations_total{result=success} counts them ($ok)" ||
    fail "seam_cert_rotations_total{result=success}" "$ok"
expiry=$(metric seam_cert_expiry_timestamp_seconds)
now=$(date +%s)
[ "$expiry" -gt "$now" ] && [ "$expiry" -le $((now + 21)) ] && pass "seam_cert_expiry_timestamp_seconds is the leaf's notAfter" ||
    fail "seam_cert_expiry_timestamp_seconds" "$expiry at $now"
handshakes=$(curl -s "http://127.0.0.1:$IN_ADMIN/metrics" | awk '/^seam_tls_handshakes_total\{direction="inbound"/ {s += $NF} END {print s + 0}')
[ "$handshakes" -ge 4 ] && pass "new mesh connections handshook across rotations ($handshakes)" ||
    fail "new mesh connections across rotations" "$handshakes"
check "rotations are logged with both serials" 1 "$(grep -c "certificate renewed by seam-ca (credential: certificate): $BACK_ID serial $START_IN -> " backend.err)"

# --- POST /rotate ------------------------------------------------------------------------------
# rotation_not_due ADMIN_PORT SECONDS: the planned renewal is at least SECONDS away.
rotation_not_due() {
    local next
    next=$(certs_field "$1" next_rotation)
    [[ $next =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$ ]] && [ "$(date -u -d "$next" +%s)" -ge $(($(date +%s) + $2)) ]
}
# a web page's cross-origin POST (a "simple" request, no preflight) is refused and starts no renewal;
# it is sent while no renewal is due, so a serial change could only be its doing
wait_for 25 rotation_not_due "$OUT_ADMIN" 6 || fail "a moment with no renewal due" "$(certs_field "$OUT_ADMIN" next_rotation)"
before=$(certs_field "$OUT_ADMIN" serial)
check "POST /rotate from a page (Origin, text/plain, foreign Host): 403" 403 \
    "$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Origin: http://evil.example' -H 'Content-Type: text/plain' \
        -H 'Host: evil.example' --data x "http://127.0.0.1:$OUT_ADMIN/rotate")"
sleep 2
check "... and the serial did not change" "$before" "$(certs_field "$OUT_ADMIN" serial)"
before=$(certs_field "$OUT_ADMIN" serial)
check "POST /rotate: 202" 202 "$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$OUT_ADMIN/rotate")"
wait_for 10 serial_is_not "$OUT_ADMIN" "$before"
check "POST /rotate: the serial changed" 1 "$(serial_is_not "$OUT_ADMIN" "$before" && echo 1 || echo 0)"
check "GET /rotate: 405" 405 "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$OUT_ADMIN/rotate")"

# --- the CA down past a renewal point, back before expiry ---------------------------------------
wait_for 25 field_at_least "$IN_ADMIN" expires_in_seconds 17 # just after a renewal
# the frontend's certificate must outlive the outage too: its own schedule (half-life with jitter) may
# leave it only a few seconds, and with its join token spent it could not come back by itself
before=$(certs_field "$OUT_ADMIN" serial)
curl -s -o /dev/null -X POST "http://127.0.0.1:$OUT_ADMIN/rotate"
wait_for 10 serial_is_not "$OUT_ADMIN" "$before"
stop_pid "$CA_PID"
wait_for 25 field_at_least "$IN_ADMIN" consecutive_failures 1
check "CA down: the backend counts failed renewals" 1 "$(field_at_least "$IN_ADMIN" consecutive_failures 1 && echo 1 || echo 0)"
check_contains "... and names the cause" "unreachable: 127.0.0.1:$CA_PORT refused the connection" \
    "$(certs_field "$IN_ADMIN" last_error)"
check "CA down, certificate still valid: traffic flows" 200 "$(request)"
check "CA down, certificate still valid: /ready 200" 200 "$(ready "$IN_ADMIN")"
failed_metric=$(metric 'seam_cert_rotations_total{result="failure"}')
[ "$failed_metric" -ge 1 ] && pass "seam_cert_rotations_total{result=failure} counts it ($failed_metric)" ||
    fail "seam_cert_rotations_total{result=failure}" "$failed_metric"
check "each failure is one log line naming the cause" 1 \
    "$(grep -c "certificate renewal failed (unreachable: 127.0.0.1:$CA_PORT refused the connection); retry 1 in" backend.err | awk '{print ($1 >= 1)}')"
before=$(certs_field "$IN_ADMIN" serial)
run_ca ca || exit 1
wait_for 20 field_is "$IN_ADMIN" consecutive_failures 0
check "CA back: the backend renews by itself" 1 "$(serial_is_not "$IN_ADMIN" "$before" && echo 1 || echo 0)"
check "CA back: traffic flows" 200 "$(request)"

# --- the CA down past expiry -----------------------------------------------------------------------
stop_pid "$CA_PID"
wait_for 40 not_ready "$IN_ADMIN"
check "expired with the CA down: /ready 503" 503 "$(ready "$IN_ADMIN")"
check_contains "... saying the certificate expired and why" "the certificate has expired and could not be renewed (unreachable" \
    "$(cat ready.body)"
wait_for 10 grep -q "certificate expired at" backend.err
check "the expiry is logged" 1 "$(grep -c "certificate expired at .* could not be renewed" backend.err | awk '{print ($1 >= 1)}')"
# the join token is spent: the operator hands the frontend a new one (the file is re-read on use)
"$SEAM_CA" token create --join-tokens join-tokens.jsonl --spiffe-id "$FRONT_ID" >frontend.token.new
mv frontend.token.new frontend.token
run_ca ca || exit 1
wait_for 75 is_ready "$IN_ADMIN"
check "CA back after expiry: the backend recovers without a restart" 200 "$(ready "$IN_ADMIN")"
wait_for 75 is_ready "$OUT_ADMIN"
check "CA back after expiry: the frontend recovers with its new join token" 200 "$(ready "$OUT_ADMIN")"
check "after recovery: traffic flows" 200 "$(request)"
check "the frontend's recovery used the new token" 2 "$(grep -c '"credential":"join_token"' journal.jsonl)"
kill -0 "$BACKEND_PID" "$FRONTEND_PID" 2>/dev/null
check "both sidecars are the same processes as at the start" 0 $?

# --- root rotation: old+new roots, then a new intermediate under the new root, then new only ----------
mkdir -p both new newonly
cp ca/intermediate.pem ca/intermediate.key both/
cat ca/bundle.pem ca2/bundle.pem >both/bundle.pem
cp ca2/intermediate.pem ca2/intermediate.key new/
cp both/bundle.pem new/bundle.pem
cp ca2/intermediate.pem ca2/intermediate.key newonly/
cp ca2/bundle.pem newonly/bundle.pem
traffic 60 rotation.codes &
TRAFFIC_PID=$!

stop_pid "$CA_PID"
run_ca both || exit 1
wait_for 20 field_is "$IN_ADMIN" bundle 2
check "old+new roots: the backend trusts both without a restart" 2 "$(certs_field "$IN_ADMIN" bundle)"
wait_for 20 field_is "$OUT_ADMIN" bundle 2
check "old+new roots: the frontend trusts both" 2 "$(certs_field "$OUT_ADMIN" bundle)"

# intermediate_is ADMIN FILE: the sidecar's chain ends in the intermediate of FILE.
intermediate_is() {
    curl -s --max-time 5 "http://127.0.0.1:$1/certs" | python3 -c '
import json, sys
chain = json.load(sys.stdin).get("chain") or []
sys.exit(0 if len(chain) == 2 and chain[1].strip() == open(sys.argv[1]).read().strip() else 1)' "$2"
}
stop_pid "$CA_PID"
run_ca new || exit 1
wait_for 30 intermediate_is "$IN_ADMIN" ca2/intermediate.pem
check "new intermediate: the backend renewed under the new root" 0 "$(intermediate_is "$IN_ADMIN" ca2/intermediate.pem; echo $?)"
wait_for 30 intermediate_is "$OUT_ADMIN" ca2/intermediate.pem
check "new intermediate: the frontend renewed under the new root" 0 "$(intermediate_is "$OUT_ADMIN" ca2/intermediate.pem; echo $?)"

stop_pid "$CA_PID"
run_ca newonly || exit 1
wait_for 20 field_is "$IN_ADMIN" bundle 1
check "new root only: the backend dropped the old root" 1 "$(certs_field "$IN_ADMIN" bundle)"
wait_for 20 field_is "$OUT_ADMIN" bundle 1
check "new root only: the frontend dropped the old root" 1 "$(certs_field "$OUT_ADMIN" bundle)"
wait "$TRAFFIC_PID"
total=$(wc -l <rotation.codes)
check "traffic through the whole root rotation: zero failures (of $total)" 0 "$(grep -vc '^200$' rotation.codes)"
check "after the root rotation: traffic flows" 200 "$(request)"

# --- the private key stays in memory -------------------------------------------------------------------------
for admin in "$IN_ADMIN" "$OUT_ADMIN"; do
    for path in certs config metrics ready policy; do
        curl -s --max-time 5 "http://127.0.0.1:$admin/$path" >"admin-$admin-$path.out"
    done
done
leaks=$(grep -l "PRIVATE KEY" backend.log backend.err frontend.log frontend.err admin-*.out 2>/dev/null | wc -l)
check "no PEM private key in any log or admin output" 0 "$leaks"
# the sidecars write no file at all: only their inherited stdout and stderr are open for writing
written=0
for pid in "$BACKEND_PID" "$FRONTEND_PID"; do
    for fd in /proc/"$pid"/fd/*; do
        target=$(readlink "$fd")
        case "$target" in
        "$WORK"/backend.log | "$WORK"/backend.err | "$WORK"/frontend.log | "$WORK"/frontend.err) ;;
        /*) [ -f "$target" ] && written=$((written + 1)) && echo "  # open: $target" ;;
        esac
    done
done
check "the sidecars hold no other regular file open" 0 "$written"
check "no key material in the token or journal files" 0 "$(grep -l 'PRIVATE KEY' journal.jsonl join-tokens.jsonl | wc -l)"

stop_pid "$FRONTEND_PID"
stop_pid "$BACKEND_PID"
# keep the logs of a failed run (bazel puts them in test.outputs)
if [ "$FAILED" -ne 0 ] && [ -n "${TEST_UNDECLARED_OUTPUTS_DIR:-}" ]; then
    cp "$WORK"/*.err "$WORK"/*.log "$WORK"/journal.jsonl "$TEST_UNDECLARED_OUTPUTS_DIR/" 2>/dev/null
fi
finish
