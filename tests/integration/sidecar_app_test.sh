#!/usr/bin/env bash
# The inbound sidecar's client to the app: response framings (length, chunked, close-delimited,
# none), broken apps (cut response, not HTTP, silent), connection reuse, forwarded headers, and
# a 100 MB response to a slow client read with backpressure (flat memory).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sidecar_lib.sh"
cd "$WORK" || exit 1
# Under ASan, freed memory waits in a quarantine (256 MB by default) before reuse, which would
# show up as RSS growth here; a small quarantine keeps the memory bounds meaningful there too.
export ASAN_OPTIONS="${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}quarantine_size_mb=8"

APP_PORT=$(free_port)
IN_PORT=$(free_port)
ADMIN_PORT=$(free_port)
URL=https://127.0.0.1:$IN_PORT
MB=$((1024 * 1024))

make_ca ca
make_leaf server "$SERVER_ID"
make_leaf frontend spiffe://$TD/ns/default/sa/frontend
echo "{\"mode\": \"enforce\", \"rules\": [{\"name\": \"all\", \"from\": [\"spiffe://$TD/ns/default/sa/frontend\"]}]}" >policy.json
start_app "$APP_PORT"
start_sidecar sc --inbound "127.0.0.1:$IN_PORT" --app "127.0.0.1:$APP_PORT" --policy policy.json --app-timeout 1s
wait_port "$IN_PORT" 10

# get PROTO PATH [curl args]: prints "status size", body in $WORK/body
get() {
    local proto=$1 path=$2
    shift 2
    mtls frontend "$proto" -o "$WORK/body" -w '%{http_code} %{size_download}' "$@" "$URL$path" 2>"$WORK/curl.err"
}

for proto in --http2 --http1.1; do
    p=${proto#--}
    check "$p: content-length body" "200 $MB" "$(get $proto "/bytes?n=$MB")"
    check "$p: chunked body of 1 MB arrives whole" "200 $MB" "$(get $proto "/chunked?n=$MB")"
    check "$p: chunked body is the app's bytes" "$(head -c $MB /dev/zero | tr '\0' y | sha256sum)" "$(sha256sum <body)"
    check "$p: empty chunked body" "200 0" "$(get $proto "/chunked?n=0")"
    check "$p: close-delimited body" "200 300000" "$(get $proto "/close?n=300000")"
    check "$p: 204 has no body" "204 0" "$(get $proto /nocontent)"
    check "$p: HEAD has no body" "200 0" "$(get $proto "/bytes?n=5000" -I)"
    check_contains "$p: HEAD keeps the length" "content-length: 5000" "$(tr -d '\r' <body | tr A-Z a-z)"
    check "$p: one date and one server header" "1 1" "$(tr A-Z a-z <body | grep -c '^date:') $(tr A-Z a-z <body | grep -c '^server:')"
    out=$(get $proto "/cut?n=200000")
    rc=$?
    [ "$rc" -ne 0 ] || [ "${out#* }" != 200000 ] && pass "$p: a response the app cuts short is not passed off as complete ($out, curl $rc)" ||
        fail "$p: a cut response is not passed off as complete" "$out"
    check "$p: an app that does not speak HTTP: 502" 502 "$(get $proto /garbage | cut -d' ' -f1)"
    check_contains "$p: ... naming the app" "the app at 127.0.0.1:$APP_PORT did not answer with HTTP/1.x" "$(cat body)"
    check "$p: an app silent past --app-timeout: 504" 504 "$(get $proto "/slow?ms=3000" | cut -d' ' -f1)"
    check_contains "$p: ... naming the app" "the app at 127.0.0.1:$APP_PORT did not answer in time" "$(cat body)"
done

# connection reuse: two requests in a row reach the app over one pooled connection
get --http2 /api/one >/dev/null
first=$(python3 -c 'import json; print(json.load(open("body"))["peer_port"])')
get --http2 /api/two >/dev/null
second=$(python3 -c 'import json; print(json.load(open("body"))["peer_port"])')
check "sequential requests reuse the app connection" "$first" "$second"
get --http1.1 "/close?n=10" >/dev/null
get --http2 /api/three >/dev/null
third=$(python3 -c 'import json; print(json.load(open("body"))["peer_port"])')
[ "$third" != "$first" ] && pass "a connection the app closed is not reused" || fail "a connection the app closed is not reused"

# what the app is told about the hop
get --http1.1 /api/hdr -H 'x-forwarded-proto: http' -H 'expect: 100-continue' -d 'x=1' >/dev/null
check "x-forwarded-proto says https (the client's copy is replaced)" https \
    "$(python3 -c 'import json; print(json.load(open("body"))["x_forwarded_proto"])')"
check "x-forwarded-for names the peer" 127.0.0.1 "$(python3 -c 'import json; print(json.load(open("body"))["x_forwarded_for"])')"
check "the body arrives with its length" 3 "$(python3 -c 'import json; print(json.load(open("body"))["body_length"])')"
check "expect is not forwarded (the sidecar already answered it)" None \
    "$(python3 -c 'import json; print(json.load(open("body"))["expect"])')"

# backpressure: 100 MB to a client reading at 20 MB/s; the sidecar reads the app only as fast
before=$(awk '/^VmHWM/ {print $2}' "/proc/$SC_PID/status")
for proto in --http2 --http1.1; do
    check "${proto#--}: 100 MB to a slow client" "200 $((100 * MB))" \
        "$(get $proto "/bytes?n=$((100 * MB))" --limit-rate 20M --max-time 60)"
done
after=$(awk '/^VmHWM/ {print $2}' "/proc/$SC_PID/status")
growth=$(((after - before) / 1024))
[ "$growth" -lt 20 ] && pass "peak RSS grew ${growth} MB (< 20 MB) for 200 MB sent slowly" ||
    fail "peak RSS growth under 20 MB" "${growth} MB ($before kB -> $after kB)"

# the sidecar survived all of it
check "/ready is still 200" 200 "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$ADMIN_PORT/ready")"
check "content after the broken apps: 200" "200 10" "$(get --http2 "/bytes?n=10")"
finish
