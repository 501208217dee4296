#!/usr/bin/env bash
# seam-sidecar outbound bodies and load: 100 MB downloads and uploads (content-length, chunked,
# h2c) stream through the pair with each sidecar's peak RSS growing by less than 20 MB and the
# app reading every byte; an upload refused early, a cut-off upload and a cut-off download leave
# the mesh connection usable; h2load through the pair.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sidecar_lib.sh"
source "$(dirname "$0")/sidecar_outbound_lib.sh"
cd "$WORK" || exit 1
# Under ASan, freed memory waits in a quarantine (256 MB by default) before reuse, which would
# show up as RSS growth here; a small quarantine keeps the memory bounds meaningful there too.
export ASAN_OPTIONS="${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}quarantine_size_mb=8"

start_pair_backend --threads 2
# Under AddressSanitizer, freed memory sits in a quarantine (256 MB by default) and counts in RSS;
# a small one keeps the peak a measure of what the sidecar holds (no effect on normal builds).
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=8"
start_frontend routes.json --threads 2 --upstream-timeout 60s
OUT=http://127.0.0.1:$OUT_PORT
MB=$((1024 * 1024))
RSS_LIMIT_KB=$((20 * 1024))

# warm up (TLS context, h2o buffers, the mesh connection) before the baseline
check "warm-up request: 200" 200 "$(out -H "host: $BACKEND_HOST" "$OUT/bytes?n=1000000")"

# --- 100 MB download, HTTP/1.1 and h2c from the app
ibase=$(vmhwm "$BACKEND_PID")
for proto in --http1.1 --http2-prior-knowledge; do
    base=$(vmhwm "$FRONTEND_PID")
    result=$(curl -sS --max-time 120 $proto -H "host: $BACKEND_HOST" -o /dev/null \
        -w '%{http_code} %{size_download} %{speed_download}' "$OUT/bytes?n=$((100 * MB))" 2>curl.err)
    peak=$(vmhwm "$FRONTEND_PID")
    growth=$((peak - base))
    read -r status size speed <<<"$result"
    check "100 MB download ($proto): 200" 200 "$status"
    check "100 MB download ($proto): every byte" $((100 * MB)) "$size"
    echo "# download $proto: outbound VmHWM $base kB -> $peak kB (+$growth kB), $((${speed%.*} / MB)) MB/s"
    if [ "$growth" -lt "$RSS_LIMIT_KB" ]; then
        pass "100 MB download ($proto): outbound peak RSS grew less than 20 MB (+$growth kB)"
    else
        fail "100 MB download ($proto): outbound peak RSS grew less than 20 MB" "+$growth kB"
    fi
done

igrowth=$(($(vmhwm "$BACKEND_PID") - ibase))
echo "# downloads: inbound VmHWM $ibase kB -> $(vmhwm "$BACKEND_PID") kB (+$igrowth kB)"
if [ "$igrowth" -lt "$RSS_LIMIT_KB" ]; then
    pass "two 100 MB downloads: inbound peak RSS grew less than 20 MB (+$igrowth kB)"
else
    fail "two 100 MB downloads: inbound peak RSS grew less than 20 MB" "+$igrowth kB"
fi

# --- 100 MB uploads: HTTP/1.1 with a length, HTTP/1.1 chunked (the length stays unknown end to end,
# so the app gets it chunked too) and h2c; the app reads each as it comes and reports length and hash
head -c $((100 * MB)) /dev/urandom >upload.bin
UP_SHA=$(sha256sum upload.bin | cut -c1-64)
for proto in --http1.1 chunked --http2-prior-knowledge; do
    args=("$proto")
    [ "$proto" = chunked ] && args=(--http1.1 -H 'transfer-encoding: chunked')
    obase=$(vmhwm "$FRONTEND_PID")
    ibase=$(vmhwm "$BACKEND_PID")
    result=$(curl -sS --max-time 120 "${args[@]}" -H "host: $BACKEND_HOST" -T upload.bin -o body \
        -w '%{http_code} %{size_upload} %{speed_upload}' "$OUT/api/upload" 2>curl.err)
    ogrowth=$(($(vmhwm "$FRONTEND_PID") - obase))
    igrowth=$(($(vmhwm "$BACKEND_PID") - ibase))
    read -r status size speed <<<"$result"
    check "100 MB upload ($proto): 200" 200 "$status"
    # (curl counts the chunk framing too)
    [ "$proto" = chunked ] || check "100 MB upload ($proto): curl sent every byte" $((100 * MB)) "$size"
    check_contains "100 MB upload ($proto): the app read every byte" "\"body_length\": $((100 * MB))" "$(cat body)"
    check_contains "100 MB upload ($proto): the same bytes" "\"body_sha256\": \"$UP_SHA\"" "$(cat body)"
    if [ "$proto" = chunked ]; then
        check_contains "chunked upload reaches the app chunked" '"body_chunked": true' "$(cat body)"
    else
        check_contains "upload with a length reaches the app with it ($proto)" '"body_chunked": false' "$(cat body)"
    fi
    echo "# upload $proto: ${speed%.*} B/s; VmHWM growth outbound +$ogrowth kB, inbound +$igrowth kB"
    if [ "$ogrowth" -lt "$RSS_LIMIT_KB" ] && [ "$igrowth" -lt "$RSS_LIMIT_KB" ]; then
        pass "100 MB upload ($proto): both sidecars' peak RSS grew less than 20 MB (+$ogrowth kB, +$igrowth kB)"
    else
        fail "100 MB upload ($proto): both sidecars' peak RSS grew less than 20 MB" "+$ogrowth kB, +$igrowth kB"
    fi
done

# --- an upload the policy refuses is answered at once (not after 100 MB), and nothing breaks
result=$(curl -sS --max-time 60 --http1.1 -H "host: $BACKEND_HOST" -T upload.bin -o body -w '%{http_code} %{time_total}' \
    "$OUT/denied/upload" 2>curl.err)
read -r status secs <<<"$result"
check "upload to a denied path: 403" 403 "$status"
check_contains "upload to a denied path: the policy's answer" "forbidden: policy" "$(cat body)"
echo "# denied upload answered after ${secs}s"
check "a request after the denied upload: 200" 200 "$(out -H "host: $BACKEND_HOST" "$OUT/api/after-denied")"

# --- the app gives up half way through an upload: the app never takes the part for the whole
curl -sS --max-time 1 --http1.1 --limit-rate 10M -H "host: $BACKEND_HOST" -T upload.bin -o /dev/null \
    "$OUT/api/cut-upload" 2>/dev/null
check "a request after an upload cut half way: 200" 200 "$(out -H "host: $BACKEND_HOST" "$OUT/api/after-cut-upload")"
sleep 0.5
check "the app answered no cut upload" 0 "$(grep '"path":"/api/cut-upload"' backend.log | grep -c '"status":200')"

# --- the app gives up half way: the mesh stream is reset, the connection stays usable
for proto in --http1.1 --http2-prior-knowledge; do
    curl -sS --max-time 120 $proto --max-filesize 1 -H "host: $BACKEND_HOST" -o /dev/null \
        "$OUT/bytes?n=$((100 * MB))" 2>/dev/null
    check "a request after a refused download ($proto): 200" 200 "$(out -H "host: $BACKEND_HOST" "$OUT/api/after-abort")"
    curl -sS --max-time 1 $proto --limit-rate 5M -H "host: $BACKEND_HOST" -o /dev/null "$OUT/bytes?n=$((100 * MB))" 2>/dev/null
    check "a request after a download cut half way ($proto): 200" 200 "$(out -H "host: $BACKEND_HOST" "$OUT/api/after-cut")"
done

# --- load: h2load (h2c to the outbound listener) through the pair
N=${SEAM_H2LOAD_N:-20000}
if h2load -c64 -n"$N" -m10 -H ":authority: $BACKEND_HOST" "$OUT/api/load" >h2load.txt 2>&1; then
    pass "h2load -c64 -n$N ran"
else
    fail "h2load -c64 -n$N ran" "$(tail -5 h2load.txt)"
fi
check_contains "h2load: every request succeeded" "$N succeeded, 0 failed, 0 errored" "$(cat h2load.txt)"
check_contains "h2load: all 2xx" "status codes: $N 2xx" "$(cat h2load.txt)"
grep -E '^finished in|^requests:' h2load.txt | sed 's/^/# /'
# 640 concurrent requests, but each of the backend's two workers opens at most 128 connections to the app
# (the rest wait in order); idle ones stay open a while, so the count now is the peak
app_conns=$(ss -tn state established "( dport = :$APP_PORT )" | awk 'NR > 1' | wc -l)
[ "$app_conns" -ge 1 ] && [ "$app_conns" -le 256 ] && pass "the inbound side held at most 2 x 128 app connections ($app_conns)" ||
    fail "the inbound side held at most 2 x 128 app connections" "$app_conns"
# any failure, by where it came from
grep '"path":"/api/load"' frontend.log | grep -v '"status":200' | grep -o '"status":[0-9]*,.*"error":[^,]*' | sort | uniq -c | head -5 | sed 's/^/# outbound: /'
grep '"path":"/api/load"' backend.log | grep -v '"status":200' | grep -o '"status":[0-9]*' | sort | uniq -c | head -5 | sed 's/^/# inbound: /'
grep -v 'info:' frontend.err | sort | uniq -c | sort -rn | head -5 | sed 's/^/# outbound stderr: /'
grep -v 'info:' backend.err | sort | uniq -c | sort -rn | head -5 | sed 's/^/# inbound stderr: /'
echo "# mesh connections opened: $(ometric seam_upstream_connections_opened_total)"
# keep the sidecars' logs of a failed run (bazel puts them in test.outputs)
if [ "$FAILED" -ne 0 ] && [ -n "${TEST_UNDECLARED_OUTPUTS_DIR:-}" ]; then
    cp frontend.log frontend.err backend.log backend.err "$TEST_UNDECLARED_OUTPUTS_DIR/" 2>/dev/null
fi
finish
