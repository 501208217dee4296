# Helpers shared by tools/bench and tools/soak: an optimised build, a scratch
# directory, processes started in the background and stopped by PID on exit,
# run-time certificates, the HAProxy app that answers every request itself and
# a Seam sidecar pair. Everything listens on 127.0.0.1 only.
#
# Source from the top of the tree after setting LB_NAME (the prefix of every
# message) and LB_KEEP (non-empty: keep the scratch directory and its logs).

lb_die() { echo "$LB_NAME: $*" >&2; exit 1; }

# lb_build: bootstraps, builds seam-certs and seam-sidecar with -c opt; sets CERTS and SIDECAR.
lb_build() {
    tools/bootstrap >/dev/null || exit 1
    echo "$LB_NAME: building ..." >&2
    bazel build -c opt //certs:seam-certs //sidecar:seam-sidecar >/dev/null 2>&1 || lb_die "build failed"
    CERTS=$(bazel cquery -c opt --output=files //certs:seam-certs 2>/dev/null)
    SIDECAR=$(bazel cquery -c opt --output=files //sidecar:seam-sidecar 2>/dev/null)
    CERTS=$PWD/${CERTS:-bazel-bin/certs/seam-certs}
    SIDECAR=$PWD/${SIDECAR:-bazel-bin/sidecar/seam-sidecar}
}

# lb_workdir: makes the scratch directory $work, cds into it and arms the trap that
# stops every PID in $pids (TERM, then waits for each), runs $LB_AFTER_STOP (a command
# name, when set) and removes $work.
lb_workdir() {
    work=$(mktemp -d)
    pids=()
    trap lb_cleanup EXIT
    cd "$work" || exit 1
    # logs in a folder of their own: a sidecar watches the folders of its certificate, policy and routes files, and
    # a log written beside them would wake its main thread on every line
    mkdir logs
}
lb_cleanup() {
    local p
    for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null; done
    for p in "${pids[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null; done
    # what must go once the processes have stopped (tools/bench: the network namespaces)
    [ -z "${LB_AFTER_STOP:-}" ] || "$LB_AFTER_STOP"
    if [ -n "${LB_KEEP:-}" ]; then echo "$LB_NAME: logs kept in $work" >&2; else rm -rf "$work"; fi
}

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { # PORT: waits at most 10 s for a listener
    local i
    for ((i = 0; i < 100; i++)); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
    return 1
}
start() { # NAME CMD...: background, stdout and stderr in $work/NAME.log, PID recorded in LAST
    local name=$1
    shift
    "$@" >"$work/logs/$name.log" 2>&1 &
    LAST=$!
    pids+=("$LAST")
}

# lb_cpu_ticks PID: utime + stime of PID (all its threads) in clock ticks, fields 14 and 15 of
# /proc/PID/stat counted after the command name, which may hold spaces; 0 when PID is gone.
lb_cpu_ticks() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
    stat=${stat##*) }
    awk '{print $12 + $13}' <<<"$stat"
}

# lb_certs: a root for $TD and two leaves, client.pem/.key ($CLIENT_ID) and server.pem/.key ($SERVER_ID).
lb_certs() {
    TD=bench.local
    CLIENT_ID=spiffe://$TD/ns/bench/sa/client
    SERVER_ID=spiffe://$TD/ns/bench/sa/server
    "$CERTS" init-root --out ca --trust-domain $TD >/dev/null || lb_die "seam-certs init-root failed"
    "$CERTS" issue --ca-dir ca --spiffe-id $CLIENT_ID --ttl 2h --out client >/dev/null || lb_die "seam-certs issue failed"
    "$CERTS" issue --ca-dir ca --spiffe-id $SERVER_ID --ttl 2h --out server >/dev/null || lb_die "seam-certs issue failed"
}

# lb_start_app: an HAProxy that answers every request itself with 200 "ok" (fast enough
# not to be the bottleneck); sets P_APP.
lb_start_app() {
    P_APP=$(port)
    cat >app.cfg <<EOF
global
    nbthread 1
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend app
    bind 127.0.0.1:$P_APP
    http-request return status 200 content-type text/plain string "ok"
EOF
    start app haproxy -f app.cfg -db
    wait_port "$P_APP" || { cat "$work/logs/app.log" >&2; lb_die "the app did not start"; }
}

# lb_start_seam_pair [SIDECAR FLAGS...]: an inbound sidecar in front of the app (policy: allow
# $CLIENT_ID) and an outbound sidecar whose one route leads there, each with the extra flags.
# Sets P_SI/P_SO (listeners), A_SI/A_SO (admin), PID_SI/PID_SO. Exits when the inbound side
# does not start; returns 1 when the outbound side does not (its log is in $work/logs/seam-out.log).
lb_start_seam_pair() {
    P_SI=$(port)
    P_SO=$(port)
    A_SI=$(port)
    A_SO=$(port)
    cat >policy.json <<EOF
{"mode": "enforce", "default": "deny", "rules": [{"name": "bench-client", "from": ["$CLIENT_ID"]}]}
EOF
    cat >routes.json <<EOF
{"routes": [{"host": "127.0.0.1", "upstream": "127.0.0.1:$P_SI", "identity": "$SERVER_ID"}]}
EOF
    start seam-in "$SIDECAR" --cert server.pem --key server.key --bundle ca/bundle.pem --inbound "127.0.0.1:$P_SI" \
        --app "127.0.0.1:$P_APP" --policy policy.json --admin "127.0.0.1:$A_SI" "$@"
    PID_SI=$LAST
    start seam-out "$SIDECAR" --cert client.pem --key client.key --bundle ca/bundle.pem --inbound off \
        --outbound "127.0.0.1:$P_SO" --routes routes.json --admin "127.0.0.1:$A_SO" "$@"
    PID_SO=$LAST
    wait_port "$P_SI" || { cat "$work/logs/seam-in.log" >&2; lb_die "the inbound sidecar did not start"; }
    wait_port "$P_SO"
}
