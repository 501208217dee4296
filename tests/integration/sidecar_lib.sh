# Helpers shared by the seam-sidecar integration tests (source after lib.sh).

SIDECAR=$(seam_bin sidecar/seam-sidecar)
CERTS=$(seam_bin certs/seam-certs)
TESTCERT=$(seam_bin tests/tools/seam-testcert)
TEST_APP=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/sidecar_test_app.py
TD=cluster.local
SERVER_ID=spiffe://$TD/ns/default/sa/backend

# make_ca DIR: a root + intermediate for $TD.
make_ca() {
    "$CERTS" init-root --out "$1" --trust-domain $TD >/dev/null
}

# make_leaf NAME SPIFFE_ID: $WORK/NAME.pem + .key issued by $WORK/ca.
make_leaf() {
    "$CERTS" issue --ca-dir "$WORK/ca" --spiffe-id "$2" --out "$WORK/$1" >/dev/null
}

# start_app PORT: the echo app; sets APP_PID.
start_app() {
    start_bg "app-$1" python3 "$TEST_APP" "$1"
    APP_PID=$LAST_PID
    wait_port "$1" 10
}

# start_sidecar NAME ARGS...: seam-sidecar with the server identity; access log in $WORK/NAME.log
# (stdout), diagnostics in $WORK/NAME.err; sets SC_PID. ADMIN_PORT must be set.
start_sidecar() {
    local name=$1
    shift
    "$SIDECAR" --cert "$WORK/server.pem" --key "$WORK/server.key" --bundle "$WORK/ca/bundle.pem" \
        --admin "127.0.0.1:$ADMIN_PORT" "$@" >"$WORK/$name.log" 2>"$WORK/$name.err" &
    SC_PID=$!
    PIDS+=("$SC_PID")
    wait_port "$ADMIN_PORT" 10
}

# metric SERIES: the value of one exact series line of /metrics (0 when absent).
metric() {
    local v
    v=$(curl -s --max-time 5 "http://127.0.0.1:$ADMIN_PORT/metrics" | grep -F "$1 " | grep -v '^#' | head -1 | awk '{print $NF}')
    echo "${v:-0}"
}

# wait_metric SERIES WANT [SECONDS]: waits (at most SECONDS, default 5) until the series equals WANT;
# prints the last value.
wait_metric() {
    local i v limit=${3:-5}
    for ((i = 0; i < limit * 10; i++)); do
        v=$(metric "$1")
        [ "$v" = "$2" ] && break
        sleep 0.1
    done
    echo "$v"
}

# mtls CLIENT ARGS...: curl with CLIENT's certificate (the server's has no DNS name,
# so the test client skips hostname checks; the sidecar's own verification is what is tested).
mtls() {
    local who=$1
    shift
    curl -sS -k --max-time 10 --cert "$WORK/$who.pem" --key "$WORK/$who.key" "$@"
}

# code CLIENT PROTO URL [ARGS...]: prints the status code (000 when the handshake failed).
code() {
    local who=$1 proto=$2 url=$3
    shift 3
    mtls "$who" "$proto" -o "$WORK/body" -w '%{http_code}' "$@" "$url" 2>"$WORK/curl.err"
}
