# Helpers for the outbound tests (source after lib.sh and sidecar_lib.sh): a client-side sidecar
# (identity "frontend", outbound only) in front of a server-side sidecar (identity "backend",
# inbound only) in front of the echo app, all on 127.0.0.1.

CLIENT_ID=spiffe://$TD/ns/default/sa/frontend
BACKEND_HOST=backend.default.svc

# make_pair_certs: $WORK/ca, server.pem (backend), frontend.pem (frontend).
make_pair_certs() {
    make_ca "$WORK/ca"
    make_leaf server "$SERVER_ID"
    make_leaf frontend "$CLIENT_ID"
}

# start_backend [ARGS...]: app on APP_PORT + inbound sidecar on IN_PORT (admin IN_ADMIN) allowing
# the frontend identity on /api/* and /bytes; sets BACKEND_PID.
start_backend() {
    APP_PORT=$(free_port)
    IN_PORT=$(free_port)
    IN_ADMIN=$(free_port)
    cat >"$WORK/policy.json" <<EOF
{"mode": "enforce", "default": "deny",
 "rules": [{"name": "frontend-api", "from": ["$CLIENT_ID"], "paths": ["/api/*", "/bytes", "/slow"]}]}
EOF
    start_app "$APP_PORT"
    ADMIN_PORT=$IN_ADMIN
    start_sidecar backend --inbound "127.0.0.1:$IN_PORT" --app "127.0.0.1:$APP_PORT" --policy "$WORK/policy.json" "$@"
    BACKEND_PID=$SC_PID
    wait_port "$IN_PORT" 10
}

# backend_routes: a routes file (on stdout) with the one route, BACKEND_HOST to the backend sidecar.
backend_routes() {
    echo "{\"routes\": [{\"host\": \"$BACKEND_HOST\", \"upstream\": \"127.0.0.1:$IN_PORT\", \"identity\": \"$SERVER_ID\"}]}"
}

# start_pair_backend [ARGS...]: the certificates, the backend (ARGS go to its sidecar) and
# $WORK/routes.json routing BACKEND_HOST to it, for start_frontend.
start_pair_backend() {
    make_pair_certs
    start_backend "$@"
    backend_routes >"$WORK/routes.json"
}

# start_frontend ROUTES_FILE [ARGS...]: the outbound-only sidecar on OUT_PORT (admin OUT_ADMIN),
# access log in $WORK/frontend.log, diagnostics in $WORK/frontend.err; sets FRONTEND_PID.
start_frontend() {
    local routes=$1
    shift
    OUT_PORT=$(free_port)
    OUT_ADMIN=$(free_port)
    "$SIDECAR" --cert "$WORK/frontend.pem" --key "$WORK/frontend.key" --bundle "$WORK/ca/bundle.pem" \
        --admin "127.0.0.1:$OUT_ADMIN" --inbound off --outbound "127.0.0.1:$OUT_PORT" --routes "$routes" "$@" \
        >"$WORK/frontend.log" 2>"$WORK/frontend.err" &
    FRONTEND_PID=$!
    PIDS+=("$FRONTEND_PID")
    wait_port "$OUT_ADMIN" 10
    wait_port "$OUT_PORT" 10
}

# ometric SERIES / imetric SERIES: a series of the frontend's / backend's /metrics.
ometric() {
    ADMIN_PORT=$OUT_ADMIN metric "$1"
}
imetric() {
    ADMIN_PORT=$IN_ADMIN metric "$1"
}

# out CURL-ARGS...: curl against the outbound listener; prints the status code, body in $WORK/body.
out() {
    curl -sS --max-time 20 -o "$WORK/body" -w '%{http_code}' "$@" 2>"$WORK/curl.err"
}

# vmhwm PID: peak resident set size in kB.
vmhwm() {
    awk '/^VmHWM/ {print $2}' "/proc/$1/status"
}
