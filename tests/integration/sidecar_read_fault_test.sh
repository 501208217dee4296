#!/usr/bin/env bash
# seam-sidecar under read faults: both sidecars of a pair run with a library that makes every
# read following a buffer-filling read of a non-blocking socket fail with EAGAIN ("nothing to
# read yet"; the kernel does this when its queue held exactly one buffer). Long uploads and
# downloads over the mesh hop, and direct mTLS uploads over HTTP/1.1 and HTTP/2, must finish
# with every byte and no connection lost.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sidecar_lib.sh"
source "$(dirname "$0")/sidecar_outbound_lib.sh"
cd "$WORK" || exit 1

FAULT_LIB=$(seam_bin tests/tools/libseam_read_fault.so)
# ASan wants its runtime first among the loaded libraries; the injector only wraps read(2)
export ASAN_OPTIONS="${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}verify_asan_link_order=0"
export SEAM_READ_FAULT_COUNT=$WORK/faults
MB=$((1024 * 1024))

# only the sidecars get the injector (the app and the clients are not under test)
LD_PRELOAD=$FAULT_LIB start_pair_backend --threads 2
LD_PRELOAD=$FAULT_LIB start_frontend routes.json --threads 2 --upstream-timeout 60s
OUT=http://127.0.0.1:$OUT_PORT
URL=https://127.0.0.1:$IN_PORT

head -c $((20 * MB)) /dev/urandom >upload.bin
UP_SHA=$(sha256sum upload.bin | cut -c1-64)

# --- through the pair: the inbound sidecar reads the mesh hop's uploads, the outbound its downloads
for proto in --http1.1 chunked --http2-prior-knowledge; do
    args=("$proto")
    [ "$proto" = chunked ] && args=(--http1.1 -H 'transfer-encoding: chunked')
    status=$(curl -sS --max-time 60 "${args[@]}" -H "host: $BACKEND_HOST" -T upload.bin -o body \
        -w '%{http_code}' "$OUT/api/upload" 2>curl.err)
    check "20 MB upload through the pair ($proto): 200" 200 "$status"
    check_contains "20 MB upload through the pair ($proto): the app got the same bytes" \
        "\"body_sha256\": \"$UP_SHA\"" "$(cat body)"
done
for proto in --http1.1 --http2-prior-knowledge; do
    result=$(curl -sS --max-time 60 $proto -H "host: $BACKEND_HOST" -o /dev/null \
        -w '%{http_code} %{size_download}' "$OUT/bytes?n=$((20 * MB))" 2>curl.err)
    check "20 MB download through the pair ($proto): 200 and every byte" "200 $((20 * MB))" "$result"
done

# --- straight to the inbound listener over mTLS: its HTTP/1.1 and HTTP/2 servers read the body
for proto in --http1.1 --http2; do
    status=$(mtls frontend "$proto" -T upload.bin -o body -w '%{http_code}' "$URL/api/upload" 2>curl.err)
    check "20 MB mTLS upload to the inbound listener ($proto): 200" 200 "$status"
    check_contains "20 MB mTLS upload to the inbound listener ($proto): the same bytes" \
        "\"body_sha256\": \"$UP_SHA\"" "$(cat body)"
done

# --- many requests on shared mesh connections
if h2load -c8 -n2000 -m10 -H ":authority: $BACKEND_HOST" "$OUT/api/load" >h2load.txt 2>&1; then
    check_contains "h2load through the pair: every request succeeded" "2000 succeeded, 0 failed, 0 errored" \
        "$(cat h2load.txt)"
else
    fail "h2load through the pair ran" "$(tail -5 h2load.txt)"
fi

check "no mesh connection was lost (outbound log)" "" "$(grep -E 'upstream-closed|closed the mesh connection' frontend.err)"
check "no connection closed mid-request (inbound log)" "" "$(grep -E 'closed with [0-9]+ stream' backend.err)"

# both sidecars stop cleanly, and the faults really happened in both (each writes its count when it exits)
stopped "after the faults" "$FRONTEND_PID" frontend.err
stopped "after the faults" "$BACKEND_PID" backend.err
for who in FRONTEND BACKEND; do
    pid_var=${who}_PID
    count=$(cat "faults.${!pid_var}" 2>/dev/null || echo missing)
    if [ "$count" != missing ] && [ "$count" -gt 0 ]; then
        pass "the ${who,,} sidecar saw injected EAGAIN reads ($count)"
    else
        fail "the ${who,,} sidecar saw injected EAGAIN reads" "$count"
    fi
done
finish
