# The TCP section of tools/bench: bulk transfers between two pods made as network namespaces,
# A (192.0.2.1) and B (192.0.2.2, TEST-NET-1) joined by a veth pair, with iperf3 (one connection,
# one direction at a time) from A to B and from B to A:
#   direct:           iperf3 in A -> iperf3 in B
#   haproxy:          iperf3 in A -> haproxy in A (mode tcp) -(TLS 1.3, client certificate, verify
#                     required both ways)-> haproxy in B -> iperf3 in B on 127.0.0.1
#   seam:             iperf3 in A dials B's address; tools/seam-iptables hands the connection to A's
#                     sidecar (--transparent), which carries it as an HTTP/2 CONNECT stream over
#                     mTLS to B's sidecar, which connects to iperf3 on 127.0.0.1
#   seam passthrough: the same from A to an address of B no route covers: A's sidecar relays it as
#                     it is (no TLS, one sidecar), for the cost of the relay alone
# Each proxy's CPU (utime + stime from /proc/PID/stat) is read before and after each transfer.
# The direct and HAProxy runs come first, before the interception rules exist in either pod.
#
# Source from the top of the tree after lib-bench.sh. After lb_workdir and lb_certs, `lbt_run
# SECONDS` writes $work/tcp.json: {"skipped": "why"} when it cannot run (not root, a tool missing,
# no network namespaces), else the rows. Everything it starts is in $pids (stopped by
# lb_cleanup); `lbt_cleanup` (set it as LB_AFTER_STOP) removes the namespaces, and with them
# their veth ends and interception rules.

LBT_NS_A=seam-bench-a-$$
LBT_NS_B=seam-bench-b-$$
LBT_VETH_A=sba$$ # interface names: at most 15 bytes
LBT_VETH_B=sbb$$
LBT_A_IP=192.0.2.1
LBT_B_IP=192.0.2.2
LBT_UNMESHED_IP=192.0.2.3 # a second address of pod B that no route covers
LBT_UID=15100             # the sidecars' uid, which the interception rules exempt
LBT_APP_PORT=5201         # iperf3 in pod B, the meshed app port: redirected to B's mTLS listener
LBT_PLAIN_PORT=5202       # a second iperf3 in pod B on a port the rules leave alone (passthrough)
LBT_HA_OUT_PORT=15002     # outbound haproxy in pod A, on 127.0.0.1
LBT_HA_IN_PORT=15443      # inbound haproxy in pod B, on B's address
LBT_NAMESPACES=()
LBT_SEAM_IPTABLES=$PWD/tools/seam-iptables # sourced from the top of the tree, before lb_workdir

lbt_cleanup() {
    local ns
    for ns in "${LBT_NAMESPACES[@]:-}"; do
        [ -n "$ns" ] && ip netns del "$ns" 2>/dev/null
    done
    LBT_NAMESPACES=()
}

lbt_skip() { # REASON: records why the section did not run
    echo "$LB_NAME: TCP section skipped: $1" >&2
    python3 -c 'import json, sys; json.dump({"skipped": sys.argv[1]}, open(sys.argv[2], "w"))' "$1" "$work/tcp.json"
}

# lbt_ns_listening NS PORT: waits at most 10 s until something listens on PORT inside NS (ss, so
# that no test connection reaches the server: iperf3 would count it as a failed test).
lbt_ns_listening() {
    local i
    for ((i = 0; i < 100; i++)); do
        [ -n "$(ip netns exec "$1" ss -Hltn "sport = :$2" 2>/dev/null)" ] && return 0
        sleep 0.1
    done
    return 1
}

# lbt_transfer SETUP TARGET PORT [PID...]: one iperf3 run each way from pod A to TARGET:PORT for
# $lbt_seconds; the CPU each PID used during each run goes to $work/tcp/runs.tsv.
lbt_transfer() {
    local setup=$1 target=$2 port=$3 dir flag before used rc p
    shift 3
    for dir in a_to_b b_to_a; do
        flag=
        [ "$dir" = b_to_a ] && flag=-R
        before=()
        for p in "$@"; do before+=("$(lb_cpu_ticks "$p")"); done
        timeout $((lbt_seconds + 30)) ip netns exec "$LBT_NS_A" iperf3 -c "$target" -p "$port" -t "$lbt_seconds" \
            --connect-timeout 5000 -J $flag >"$work/tcp/$setup-$dir.json" 2>"$work/tcp/$setup-$dir.err"
        rc=$?
        used=()
        for ((p = 1; p <= $#; p++)); do
            used+=("$(($(lb_cpu_ticks "${!p}") - before[p - 1]))")
        done
        printf '%s\t%s\t%s\t%s\n' "$setup" "$dir" "$rc" "${used[*]:-}" >>"$work/tcp/runs.tsv"
    done
}

. tests/pod/netns.sh

lbt_setup_pods() {
    netns_pair "$LBT_NS_A" "$LBT_NS_B" "$LBT_VETH_A" "$LBT_VETH_B" "$LBT_A_IP" "$LBT_B_IP" LBT_NAMESPACES &&
        ip -n "$LBT_NS_B" addr add "$LBT_UNMESHED_IP/24" dev "$LBT_VETH_B"
}

# lbt_start_haproxy_pair: the baseline, one thread each, the sidecar's TLS 1.3 cipher suites in
# its order (so both pairs use AES-128-GCM). Sets LBT_PID_HO and LBT_PID_HI.
lbt_start_haproxy_pair() {
    local suites=TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256
    # one thread each; 10 minutes of silence is no timeout for a bulk transfer
    local head='global\n    nbthread 1\ndefaults\n    mode tcp\n    timeout connect 5s\n    timeout client 10m\n    timeout server 10m\n'
    { printf "$head"; cat; } >"$work/haproxy-tcp-in.cfg" <<EOF
frontend mesh_in
    bind $LBT_B_IP:$LBT_HA_IN_PORT ssl crt $work/server-haproxy.pem ca-file $work/ca/bundle.pem verify required ssl-min-ver TLSv1.3 ciphersuites $suites
    default_backend app
backend app
    server app 127.0.0.1:$LBT_APP_PORT
EOF
    { printf "$head"; cat; } >"$work/haproxy-tcp-out.cfg" <<EOF
frontend app_out
    bind 127.0.0.1:$LBT_HA_OUT_PORT
    default_backend mesh
backend mesh
    server peer $LBT_B_IP:$LBT_HA_IN_PORT ssl verify required ca-file $work/ca/bundle.pem crt $work/client-haproxy.pem ssl-min-ver TLSv1.3 ciphersuites $suites
EOF
    start haproxy-tcp-in ip netns exec "$LBT_NS_B" haproxy -f "$work/haproxy-tcp-in.cfg" -db
    LBT_PID_HI=$LAST
    start haproxy-tcp-out ip netns exec "$LBT_NS_A" haproxy -f "$work/haproxy-tcp-out.cfg" -db
    LBT_PID_HO=$LAST
    lbt_ns_listening "$LBT_NS_B" "$LBT_HA_IN_PORT" && lbt_ns_listening "$LBT_NS_A" "$LBT_HA_OUT_PORT"
}

# lbt_start_seam_pair: the interception rules in both pods, and a sidecar in each as $LBT_UID:
# A's outbound (--transparent) routes B's address to B's mTLS listener; B's policy admits A's
# identity to the app port. Sets LBT_PID_SA and LBT_PID_SB.
lbt_start_seam_pair() {
    local who
    mkdir -p "$work/tcp/bin" "$work/tcp/a" "$work/tcp/b"
    # the sidecars' uid must read the binary and its files: $work is root's, and bazel-bin may be too
    chmod 0755 "$work" "$work/tcp"
    cp "$SIDECAR" "$work/tcp/bin/seam-sidecar" && chmod 0755 "$work/tcp/bin/seam-sidecar"
    cp "$work/client.pem" "$work/tcp/a/id.pem" && cp "$work/client.key" "$work/tcp/a/id.key"
    cp "$work/server.pem" "$work/tcp/b/id.pem" && cp "$work/server.key" "$work/tcp/b/id.key"
    for who in a b; do cp "$work/ca/bundle.pem" "$work/tcp/$who/bundle.pem"; done
    printf '{"routes": [{"host": "%s", "upstream": "%s:15006", "identity": "%s"}]}\n' \
        "$LBT_B_IP" "$LBT_B_IP" "$SERVER_ID" >"$work/tcp/a/routes.json"
    printf '{"mode": "enforce", "default": "deny", "rules": [{"name": "bench-client", "from": ["%s"], "ports": [%s]}]}\n' \
        "$CLIENT_ID" "$LBT_APP_PORT" >"$work/tcp/b/policy.json"
    chown -R "$LBT_UID:$LBT_UID" "$work/tcp/a" "$work/tcp/b"
    ip netns exec "$LBT_NS_A" "$LBT_SEAM_IPTABLES" --app-ports "$LBT_APP_PORT" --sidecar-uid "$LBT_UID" \
        >>"$work/logs/seam-iptables.log" 2>&1 || return 1
    ip netns exec "$LBT_NS_B" "$LBT_SEAM_IPTABLES" --app-ports "$LBT_APP_PORT" --sidecar-uid "$LBT_UID" \
        >>"$work/logs/seam-iptables.log" 2>&1 || return 1
    start seam-tcp-b ip netns exec "$LBT_NS_B" setpriv --reuid "$LBT_UID" --regid "$LBT_UID" --clear-groups \
        "$work/tcp/bin/seam-sidecar" --cert "$work/tcp/b/id.pem" --key "$work/tcp/b/id.key" \
        --bundle "$work/tcp/b/bundle.pem" --inbound 0.0.0.0:15006 --app "127.0.0.1:$LBT_APP_PORT" \
        --policy "$work/tcp/b/policy.json" --admin 127.0.0.1:15000 --drain-timeout 2s
    LBT_PID_SB=$LAST
    start seam-tcp-a ip netns exec "$LBT_NS_A" setpriv --reuid "$LBT_UID" --regid "$LBT_UID" --clear-groups \
        "$work/tcp/bin/seam-sidecar" --cert "$work/tcp/a/id.pem" --key "$work/tcp/a/id.key" \
        --bundle "$work/tcp/a/bundle.pem" --inbound off --outbound 127.0.0.1:15001 --transparent \
        --routes "$work/tcp/a/routes.json" --admin 127.0.0.1:15000 --drain-timeout 2s
    LBT_PID_SA=$LAST
    lbt_ns_listening "$LBT_NS_B" 15006 && lbt_ns_listening "$LBT_NS_A" 15001
}

# lbt_run SECONDS: the whole section; $work/tcp.json holds the result or the reason it was skipped.
lbt_run() {
    lbt_seconds=$1
    local tool
    mkdir -p "$work/tcp"
    if [ "$(id -u)" -ne 0 ]; then
        lbt_skip "it needs root (network namespaces, iptables, setpriv); run tools/bench as root for it"
        return 0
    fi
    for tool in ip iptables setpriv ss iperf3 haproxy; do
        command -v "$tool" >/dev/null 2>&1 || { lbt_skip "$tool is not installed (tools/bootstrap installs it)"; return 0; }
    done
    if ! lbt_setup_pods 2>"$work/logs/netns.log"; then
        lbt_skip "cannot make the network namespaces: $(head -c 300 "$work/logs/netns.log")"
        return 0
    fi
    start iperf3-app ip netns exec "$LBT_NS_B" iperf3 -s -p "$LBT_APP_PORT"
    start iperf3-plain ip netns exec "$LBT_NS_B" iperf3 -s -p "$LBT_PLAIN_PORT"
    if ! lbt_ns_listening "$LBT_NS_B" "$LBT_APP_PORT" || ! lbt_ns_listening "$LBT_NS_B" "$LBT_PLAIN_PORT"; then
        lbt_skip "iperf3 did not start in pod B: $(head -c 300 "$work/logs/iperf3-app.log")"
        return 0
    fi
    : >"$work/tcp/runs.tsv"

    echo "$LB_NAME: TCP direct ..." >&2
    lbt_transfer direct "$LBT_B_IP" "$LBT_APP_PORT"
    echo "$LB_NAME: TCP haproxy pair ..." >&2
    if lbt_start_haproxy_pair; then
        lbt_transfer haproxy 127.0.0.1 "$LBT_HA_OUT_PORT" "$LBT_PID_HO" "$LBT_PID_HI"
    else
        echo "$LB_NAME: the TCP haproxy pair did not start: $(cat "$work"/logs/haproxy-tcp-*.log | head -c 300)" >&2
    fi
    echo "$LB_NAME: TCP seam pair ..." >&2
    if lbt_start_seam_pair; then
        lbt_transfer seam "$LBT_B_IP" "$LBT_APP_PORT" "$LBT_PID_SA" "$LBT_PID_SB"
        echo "$LB_NAME: TCP seam passthrough ..." >&2
        lbt_transfer seam-passthrough "$LBT_UNMESHED_IP" "$LBT_PLAIN_PORT" "$LBT_PID_SA"
    else
        echo "$LB_NAME: the TCP seam pair did not start: $(cat "$work"/logs/seam-tcp-*.log "$work/logs/seam-iptables.log" 2>/dev/null | head -c 300)" >&2
    fi

    python3 - "$work/tcp" "$lbt_seconds" "$(getconf CLK_TCK)" "$work/logs/seam-tcp-a.log" \
        "seam=$LBT_B_IP:$LBT_APP_PORT=tunnel" "seam-passthrough=$LBT_UNMESHED_IP:$LBT_PLAIN_PORT=passthrough" \
        >"$work/tcp.json" <<'EOF'
import json, os, sys
folder, seconds, hz, sidecar_log = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
expect = dict((setup, rest.split("=")) for setup, rest in (a.split("=", 1) for a in sys.argv[5:]))
MB = 1e6
# how A's sidecar served each destination, from its access log: the Seam rows must be what they say
served = {}
try:
    for line in open(sidecar_log):
        if line.startswith("{"):
            entry = json.loads(line)
            if entry.get("protocol") == "tcp":
                key = (entry.get("original_dst"), entry.get("decision"))
                served[key] = served.get(key, 0) + 1
except (OSError, ValueError):
    pass
rows = {}
for line in open(os.path.join(folder, "runs.tsv")):
    setup, direction, rc, *ticks = line.rstrip("\n").split("\t")
    ticks = [int(t) for t in (ticks[0].split() if ticks else [])]
    run = {"mb_per_s": None, "megabytes": None, "cpu_ms_per_mb": None, "error": None}
    try:
        out = json.load(open(os.path.join(folder, f"{setup}-{direction}.json")))
    except (OSError, ValueError):
        out = {}
    received = (out.get("end") or {}).get("sum_received") or {}
    if out.get("error") or rc != "0" or not received.get("seconds"):
        err = out.get("error") or open(os.path.join(folder, f"{setup}-{direction}.err")).read().strip()
        run["error"] = (err or f"iperf3 exit {rc}")[:200]
    else:
        mb = received["bytes"] / MB
        run["megabytes"] = round(mb, 1)
        run["mb_per_s"] = round(mb / received["seconds"], 1)
        # outbound side first, inbound side second (the order lbt_transfer was given the PIDs in)
        sides = dict(zip(("outbound", "inbound"), (t * 1000.0 / hz / mb for t in ticks)))
        run["cpu_ms_per_mb"] = {k: round(v, 3) for k, v in sides.items()} or None
    if setup in expect and run["error"] is None and not served.get(tuple(expect[setup])):
        run["error"] = f"A's sidecar logged no {expect[setup][1]} connection to {expect[setup][0]}"
    rows.setdefault(setup, {"setup": setup})[direction] = run
for setup, (dst, decision) in expect.items():
    if setup in rows:
        rows[setup]["sidecar_connections"] = {d: n for (o, d), n in served.items() if o == dst}
json.dump({"seconds": seconds, "rows": list(rows.values())}, sys.stdout, indent=2)
EOF
}
