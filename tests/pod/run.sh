#!/usr/bin/env bash
# Pod-level test of transparent interception, with Linux network namespaces as pods: pods A and B,
# joined by a veth pair on 192.0.2.0/24 (TEST-NET-1), each run the echo app on 0.0.0.0:8080 (root)
# and a seam-sidecar as uid 1337 (inbound 0.0.0.0:15006, outbound 127.0.0.1:15001 --transparent,
# admin 127.0.0.1:15000) behind tools/seam-iptables. The apps call each other by plain address; a
# third identity, c, which B's policy denies, calls B from a second sidecar in pod A.
# Needs root (ip netns, iptables, setpriv). Prints one line per check, then "pod: N passed, M failed".
# usage: tests/pod/run.sh SIDECAR_BIN CERTS_BIN TEST_APP
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
sidecar_src=${1:?usage: run.sh SIDECAR_BIN CERTS_BIN TEST_APP}
certs=${2:?usage: run.sh SIDECAR_BIN CERTS_BIN TEST_APP}
app=${3:?usage: run.sh SIDECAR_BIN CERTS_BIN TEST_APP}
source "$top/tests/integration/lib.sh"
source "$here/netns.sh"

SIDECAR_UID=1337
TD=pod.test
ID_A=spiffe://$TD/ns/default/sa/a
ID_B=spiffe://$TD/ns/default/sa/b
ID_C=spiffe://$TD/ns/default/sa/c
NS_A=seam-a-$$
NS_B=seam-b-$$
VETH_A=sa$$ # interface names: at most 15 bytes
VETH_B=sb$$
A_IP=192.0.2.1
B_IP=192.0.2.2
NOWHERE_IP=192.0.2.99 # on the link, but no pod and no route
UNMESHED_IP=192.0.2.3 # a second address of pod B that no route covers: a service outside the mesh
NAMESPACES=()

# Stops every process we started by its PID (SIGTERM, at most 5 s, then SIGKILL), removes the
# interception rules and the namespaces (their veth ends go with them), then lib.sh's files.
pod_cleanup() {
    local pid ns i
    for pid in "${PIDS[@]:-}"; do
        [ -n "$pid" ] && kill "$pid" 2>/dev/null
    done
    for pid in "${PIDS[@]:-}"; do
        [ -n "$pid" ] || continue
        for ((i = 0; i < 50; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    PIDS=()
    for ns in "${NAMESPACES[@]:-}"; do
        [ -n "$ns" ] || continue
        ip netns exec "$ns" "$top/tools/seam-iptables" --remove >/dev/null 2>&1
        ip netns del "$ns" 2>/dev/null
    done
    cleanup
}
trap pod_cleanup EXIT
trap 'exit 130' INT TERM

summary() {
    echo "pod: $PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ] && [ "$PASSED" -gt 0 ]
    exit $?
}

# in_ns NS CMD...: runs CMD in a pod as root, without proxy settings.
in_ns() {
    local ns=$1
    shift
    ip netns exec "$ns" env -u http_proxy -u HTTP_PROXY -u https_proxy -u HTTPS_PROXY -u all_proxy -u ALL_PROXY \
        -u no_proxy -u NO_PROXY "$@"
}

# ns_wait_port NS PORT [SECONDS]: waits until something accepts on 127.0.0.1:PORT inside NS.
ns_wait_port() {
    local ns=$1 port=$2 limit=${3:-10} i
    for ((i = 0; i < limit * 10; i++)); do
        ip netns exec "$ns" bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "# nothing listens on 127.0.0.1:$port in $ns after ${limit}s" >&2
    return 1
}

# ns_curl NS ARGS...: curl inside a pod; prints the status code (000: no HTTP answer), body in $WORK/body.
ns_curl() {
    local ns=$1
    shift
    in_ns "$ns" curl -sS --noproxy '*' --max-time 10 -o "$WORK/body" -w '%{http_code}' "$@" 2>"$WORK/curl.err"
}

# ns_metric NS ADMIN_PORT SERIES: one exact series of a sidecar's /metrics (0 when absent).
ns_metric() {
    local v
    v=$(in_ns "$1" curl -s --noproxy '*' --max-time 5 "http://127.0.0.1:$2/metrics" | grep -F "$3 " | grep -v '^#' |
        head -1 | awk '{print $NF}')
    echo "${v:-0}"
}

# check_ge NAME MIN VALUE: passes when VALUE (a number) is at least MIN.
check_ge() {
    if awk -v v="$3" -v m="$2" 'BEGIN { exit !(v + 0 >= m + 0) }'; then
        pass "$1"
    else
        fail "$1" "expected at least [$2], got [$3]"
    fi
}

# wait_log FILE NEEDLE: waits (at most 5 s) until FILE holds a line with NEEDLE; prints that line.
wait_log() {
    local i
    for ((i = 0; i < 50; i++)); do
        grep -F -- "$2" "$1" 2>/dev/null | tail -1 | grep . && return 0
        sleep 0.1
    done
    return 1
}

# --- preconditions
if [ "$(id -u)" -ne 0 ]; then
    fail "runs as root (ip netns, iptables, setpriv)" "uid $(id -u)"
    summary
fi
for tool in ip iptables setpriv curl python3; do
    command -v "$tool" >/dev/null 2>&1 || { fail "$tool is installed" "tools/bootstrap installs it"; summary; }
done

# --- files the sidecars' uid can read: /root (where bazel-bin points) may not be traversable
chmod 0755 "$WORK"
mkdir -p "$WORK/bin"
cp "$sidecar_src" "$WORK/bin/seam-sidecar" && chmod 0755 "$WORK/bin/seam-sidecar"
"$certs" init-root --out "$WORK/ca" --trust-domain "$TD" >/dev/null
for who in a b c; do
    mkdir -p "$WORK/$who"
    id_var=ID_${who^^}
    "$certs" issue --ca-dir "$WORK/ca" --spiffe-id "${!id_var}" --out "$WORK/$who/id" >/dev/null
    cp "$WORK/ca/bundle.pem" "$WORK/$who/bundle.pem"
    chown -R "$SIDECAR_UID:$SIDECAR_UID" "$WORK/$who"
done
policy() { # policy ALLOWED_ID: allow only that identity
    printf '{"mode": "enforce", "default": "deny", "rules": [{"name": "peer-pod", "from": ["%s"]}]}\n' "$1"
}
route() { # route HOST UPSTREAM IDENTITY
    printf '{"routes": [{"host": "%s", "upstream": "%s", "identity": "%s"}]}\n' "$1" "$2" "$3"
}
policy "$ID_B" >"$WORK/a/policy.json"
route "$B_IP" "$B_IP:15006" "$ID_B" >"$WORK/a/routes.json"
# B admits A on its HTTP app port and on two TCP ports only (a rule's "ports" are app ports)
printf '{"mode": "enforce", "default": "deny", "rules": [{"name": "peer-pod", "from": ["%s"], "ports": [8080, 7000, 7001]}]}\n' \
    "$ID_A" >"$WORK/b/policy.json"
route "$A_IP" "$A_IP:15006" "$ID_A" >"$WORK/b/routes.json"
route b.pod.test "$B_IP:15006" "$ID_B" >"$WORK/c/routes.json"

# --- two pods joined by a veth pair
if netns_pair "$NS_A" "$NS_B" "$VETH_A" "$VETH_B" "$A_IP" "$B_IP" NAMESPACES 2>"$WORK/setup.err"; then
    pass "pods $NS_A ($A_IP) and $NS_B ($B_IP) joined by a veth pair"
else
    fail "pods $NS_A ($A_IP) and $NS_B ($B_IP) joined by a veth pair" "$(cat "$WORK/setup.err")"
    summary
fi

# --- the apps, as root on 0.0.0.0:8080
start_bg app-a ip netns exec "$NS_A" python3 "$app" 8080 0.0.0.0
start_bg app-b ip netns exec "$NS_B" python3 "$app" 8080 0.0.0.0
APP_B=$LAST_PID
if ns_wait_port "$NS_A" 8080 && ns_wait_port "$NS_B" 8080; then pass "apps listen on 0.0.0.0:8080"; else fail "apps listen on 0.0.0.0:8080"; fi
# Without interception, B's app answers A in plaintext: what the rules below must prevent.
check "before interception: A reaches B's app in plaintext (control)" 200 "$(ns_curl "$NS_A" "http://$B_IP:8080/control")"
check_contains "before interception: no client identity arrives" '"xfcc": []' "$(cat "$WORK/body")"

# --- the sidecars, as uid 1337
# start_pod_sidecar NAME NS DIR ARGS...: seam-sidecar with DIR's identity; access log NAME.log, stderr NAME.err.
start_pod_sidecar() {
    local name=$1 ns=$2 dir=$3
    shift 3
    ip netns exec "$ns" setpriv --reuid "$SIDECAR_UID" --regid "$SIDECAR_UID" --clear-groups \
        "$WORK/bin/seam-sidecar" --cert "$dir/id.pem" --key "$dir/id.key" --bundle "$dir/bundle.pem" \
        --drain-timeout 2s "$@" >"$WORK/$name.log" 2>"$WORK/$name.err" &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
}
POD_ARGS=(--inbound 0.0.0.0:15006 --app 127.0.0.1:8080 --outbound 127.0.0.1:15001 --transparent
    --admin 127.0.0.1:15000)
start_pod_sidecar sidecar-a "$NS_A" "$WORK/a" "${POD_ARGS[@]}" --routes "$WORK/a/routes.json" --policy "$WORK/a/policy.json"
SC_A=$LAST_PID
start_pod_sidecar sidecar-b "$NS_B" "$WORK/b" "${POD_ARGS[@]}" --routes "$WORK/b/routes.json" --policy "$WORK/b/policy.json"
SC_B=$LAST_PID
# identity c: a second, outbound-only sidecar in pod A that the app calls on 127.0.0.1:15002 by Host
start_pod_sidecar sidecar-c "$NS_A" "$WORK/c" --inbound off --outbound 127.0.0.1:15002 --routes "$WORK/c/routes.json" \
    --admin 127.0.0.1:15100
for port in 15000 15001 15006 15100; do ns_wait_port "$NS_A" "$port" 10; done
for port in 15000 15001 15006; do ns_wait_port "$NS_B" "$port" 10; done
check "sidecar A ready" 200 "$(ns_curl "$NS_A" http://127.0.0.1:15000/ready)"
check "sidecar B ready" 200 "$(ns_curl "$NS_B" http://127.0.0.1:15000/ready)"
check "sidecar c ready" 200 "$(ns_curl "$NS_A" http://127.0.0.1:15100/ready)"
check "sidecars run as uid $SIDECAR_UID" "$SIDECAR_UID $SIDECAR_UID" \
    "$(stat -c %u "/proc/$SC_A" 2>/dev/null) $(stat -c %u "/proc/$SC_B" 2>/dev/null)"

# --- B's interception rules first: a plaintext request from A (root, no rules in A yet) now lands
# on B's mTLS listener, which refuses it; B's app never sees it.
PLAIN='seam_tls_handshake_errors_total{direction="inbound",reason="plain-http"}'
if ip netns exec "$NS_B" "$top/tools/seam-iptables" --app-ports 8080 --sidecar-uid "$SIDECAR_UID" 2>"$WORK/ipt-b.err"; then
    pass "seam-iptables installs B's rules"
else
    fail "seam-iptables installs B's rules" "$(cat "$WORK/ipt-b.err")"
fi
plain_before=$(ns_metric "$NS_B" 15000 "$PLAIN")
check "plaintext from a non-sidecar uid to B's app port gets no HTTP answer" 000 \
    "$(ns_curl "$NS_A" "http://$B_IP:8080/plaintext-bypass")"
plain_after=$plain_before
for ((i = 0; i < 50; i++)); do
    plain_after=$(ns_metric "$NS_B" 15000 "$PLAIN")
    [ "$plain_after" != "$plain_before" ] && break
    sleep 0.1
done
check "B's inbound sidecar refused it as plain-http" "$((plain_before + 1))" "$plain_after"
check "B's app never saw it (no access-log line)" 0 "$(grep -c '/plaintext-bypass' "$WORK/sidecar-b.log")"

# --- A's rules: A's app now reaches B only through its own sidecar
if ip netns exec "$NS_A" "$top/tools/seam-iptables" --app-ports 8080 --sidecar-uid "$SIDECAR_UID" 2>"$WORK/ipt-a.err"; then
    pass "seam-iptables installs A's rules"
else
    fail "seam-iptables installs A's rules" "$(cat "$WORK/ipt-a.err")"
fi
HS_B='seam_tls_handshakes_total{direction="inbound",resumed="false"}'
hs_before=$(ns_metric "$NS_B" 15000 "$HS_B")
check "A's app calls http://$B_IP:8080/ (plain, no proxy): 200 from B's app" 200 \
    "$(ns_curl "$NS_A" "http://$B_IP:8080/api/hello")"
BODY=$(cat "$WORK/body")
check_contains "B's app saw the request" '"path": "/api/hello"' "$BODY"
check_contains "B's app saw x-forwarded-client-cert with URI=A's identity" "\"xfcc\": [\"By=$ID_B;URI=$ID_A\"]" "$BODY"
check_contains "B's app saw the Host A's app sent" "\"host\": \"$B_IP:8080\"" "$BODY"
OUT_A=$(wait_log "$WORK/sidecar-a.log" '"path":"/api/hello"')
check_contains "A's access log: the original destination" "\"original_dst\":\"$B_IP:8080\"" "$OUT_A"
check_contains "A's access log: outbound to B's identity" "\"peer_id\":\"$ID_B\"" "$OUT_A"
check_contains "A's access log: 200" '"status":200' "$OUT_A"
IN_B=$(wait_log "$WORK/sidecar-b.log" '"path":"/api/hello"')
check_contains "B's access log: inbound over h2" '"direction":"inbound"' "$IN_B"
check_contains "B's access log: h2 on the mesh hop" '"protocol":"h2"' "$IN_B"
check_contains "B's access log: A's identity, allowed" "\"peer_id\":\"$ID_A\"" "$IN_B"
check_ge "B's metrics: an inbound TLS handshake more" "$((hs_before + 1))" "$(ns_metric "$NS_B" 15000 "$HS_B")"
check_ge "B's metrics: an inbound 200" 1 "$(ns_metric "$NS_B" 15000 'seam_requests_total{direction="inbound",code="200"}')"
check_ge "B's metrics: an allow decision" 1 "$(ns_metric "$NS_B" 15000 'seam_authz_decisions_total{decision="allow"}')"
check_ge "A's metrics: an outbound 200" 1 "$(ns_metric "$NS_A" 15000 'seam_requests_total{direction="outbound",code="200"}')"
check_ge "A's metrics: a mesh connection opened" 1 "$(ns_metric "$NS_A" 15000 seam_upstream_connections_opened_total)"
check "h2c from A's app, redirected: 200" 200 "$(ns_curl "$NS_A" --http2-prior-knowledge "http://$B_IP:8080/api/h2c")"
check_contains "h2c: B's app saw A's identity" "URI=$ID_A" "$(cat "$WORK/body")"
check_contains "h2c: A's access log has the original destination" "\"original_dst\":\"$B_IP:8080\"" \
    "$(wait_log "$WORK/sidecar-a.log" '"path":"/api/h2c"')"
check "another port of B, redirected, routed by B's address: 200" 200 "$(ns_curl "$NS_A" "http://$B_IP:9090/api/port")"
# a Host no route names: only the original destination can route it
check "a Host no route names, redirected to B: routed by the original destination: 200" 200 \
    "$(ns_curl "$NS_A" -H 'host: unrouted.example' "http://$B_IP:8080/api/by-dst")"
check_contains "B's app saw that Host, from A" "\"host\": \"unrouted.example\", \"x_hop\": null" "$(cat "$WORK/body")"
check_contains "B's app saw A's identity for it" "URI=$ID_A" "$(cat "$WORK/body")"

# --- the other way: B's app calls A's app
check "B's app calls http://$A_IP:8080/: 200 from A's app" 200 "$(ns_curl "$NS_B" "http://$A_IP:8080/api/back")"
check_contains "A's app saw x-forwarded-client-cert with URI=B's identity" "\"xfcc\": [\"By=$ID_A;URI=$ID_B\"]" "$(cat "$WORK/body")"

# --- no route for the original destination: 404, and no connection is made
opened_before=$(ns_metric "$NS_A" 15000 seam_upstream_connections_opened_total)
check "A's app calls $NOWHERE_IP:8080 (no route): 404" 404 "$(ns_curl "$NS_A" "http://$NOWHERE_IP:8080/x")"
check_contains "the 404 names the original destination" "no route for original destination $NOWHERE_IP:8080" "$(cat "$WORK/body")"
NOROUTE=$(wait_log "$WORK/sidecar-a.log" "\"original_dst\":\"$NOWHERE_IP:8080\"")
check_contains "A's access log names the original destination of the 404" '"error":"no-route"' "$NOROUTE"
check "no mesh connection was opened for it" "$opened_before" "$(ns_metric "$NS_A" 15000 seam_upstream_connections_opened_total)"

# --- opaque TCP from A's app: detected by its first bytes (or silence), passed through to an address
# no route covers, tunneled over mTLS (an HTTP/2 CONNECT stream) to a meshed one
TCP_TOOL=$here/tcp_tool.py
ip -n "$NS_B" addr add "$UNMESHED_IP/24" dev "$VETH_B"
start_bg tcp-echo-b ip netns exec "$NS_B" python3 "$TCP_TOOL" server --host 0.0.0.0 --port 7000 --log "$WORK/tcp-echo.log"
start_bg tcp-banner-b ip netns exec "$NS_B" python3 "$TCP_TOOL" server --host 0.0.0.0 --port 7001 --banner "220 seam-banner ready"
start_bg tcp-other-b ip netns exec "$NS_B" python3 "$TCP_TOOL" server --host 0.0.0.0 --port 7002
ns_wait_port "$NS_B" 7000 10
ns_wait_port "$NS_B" 7001 10
ns_wait_port "$NS_B" 7002 10
tcp_client() { in_ns "$NS_A" python3 "$TCP_TOOL" client "$@" 2>&1 | tail -1; }
TCP_PASS='seam_tcp_connections_total{direction="outbound",decision="passthrough"}'
check "TCP (client speaks first) to $UNMESHED_IP:7000, no route: echoed" "ok echo" \
    "$(tcp_client --target "$UNMESHED_IP:7000" --send "hello seam")"
TCP_LOG=$(wait_log "$WORK/sidecar-a.log" "\"original_dst\":\"$UNMESHED_IP:7000\"")
check_contains "A's access log: protocol tcp" '"protocol":"tcp"' "$TCP_LOG"
check_contains "A's access log: passed through" '"decision":"passthrough"' "$TCP_LOG"
check_contains "A's access log: the bytes the app sent" '"bytes_sent":11' "$TCP_LOG"
check_contains "TCP (server speaks first: a banner, after --detect-timeout): banner, then echo" "ok echo" \
    "$(tcp_client --target "$UNMESHED_IP:7001" --expect-banner "220 seam-banner" --send "after the banner")"
check "TCP half-close from the app reaches the server, the server's close reaches the app" "ok got 5 bytes eof" \
    "$(tcp_client --target "$UNMESHED_IP:7000" --send "half" --half-close)"
check_contains "the server saw the app's half-close as end of stream" "half-close 5" "$(cat "$WORK/tcp-echo.log")"
# (run with the normal build, as tools/test does: AddressSanitizer's quarantine keeps freed buffers, up to
# 256 MB, so an ASan binary passes these bounds only with ASAN_OPTIONS=quarantine_size_mb=0)
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null; }
rss_grew_less() { # rss_grew_less NAME PID BEFORE_KB: passes when PID's RSS is less than 10 MB above BEFORE_KB
    local after
    after=$(rss_kb "$2")
    if [ -n "$3" ] && [ -n "$after" ] && [ $((after - $3)) -lt 10240 ]; then
        pass "$1 ($3 -> $after KB)"
    else
        fail "$1" "$3 -> $after KB"
    fi
}
rss_before=$(rss_kb "$SC_A")
check "1 GB through the relay, then a half-close: all of it counted by the server" "ok big 1024 MB" \
    "$(tcp_client --target "$UNMESHED_IP:7000" --big 1024 --timeout 120)"
rss_grew_less "A's RSS grew less than 10 MB over the 1 GB passthrough" "$SC_A" "$rss_before"
check_ge "A's metrics: passthrough TCP connections" 4 "$(ns_metric "$NS_A" 15000 "$TCP_PASS")"
check "HTTP to the same unmeshed address still goes the HTTP way (no route: 404)" 404 \
    "$(ns_curl "$NS_A" "http://$UNMESHED_IP:7000/x")"

# the tunnel: TCP to B's address goes as an HTTP/2 CONNECT on the mTLS connection to B's sidecar,
# which checks A's identity and the port against its policy and connects to 127.0.0.1:PORT
TUN_A='seam_tcp_connections_total{direction="outbound",decision="tunnel"}'
TUN_B='seam_tcp_connections_total{direction="inbound",decision="allow"}'
check "TCP (client speaks first) to meshed $B_IP:7000: echoed through the tunnel" "ok echo" \
    "$(tcp_client --target "$B_IP:7000" --send "hello through the tunnel")"
TUN_LOG_A=$(wait_log "$WORK/sidecar-a.log" "\"original_dst\":\"$B_IP:7000\"")
check_contains "A's access log: tunneled" '"decision":"tunnel"' "$TUN_LOG_A"
check_contains "A's access log: to B's identity" "\"peer_id\":\"$ID_B\"" "$TUN_LOG_A"
check_contains "A's access log: protocol tcp" '"protocol":"tcp"' "$TUN_LOG_A"
check_contains "A's access log: the bytes the app sent" '"bytes_sent":25' "$TUN_LOG_A"
TUN_LOG_B=$(wait_log "$WORK/sidecar-b.log" "\"authority\":\"$B_IP:7000\"")
check_contains "B's access log names the caller's identity" "\"peer_id\":\"$ID_A\"" "$TUN_LOG_B"
check_contains "B's access log: protocol tcp, allowed by the rule" '"protocol":"tcp","status":200,"decision":"allow","rule":"peer-pod"' "$TUN_LOG_B"
check_contains "B's access log: the bytes the app in A sent" '"bytes_received":25' "$TUN_LOG_B"
check_contains "TCP to a meshed banner server (server speaks first): banner, then echo" "ok echo" \
    "$(tcp_client --target "$B_IP:7001" --expect-banner "220 seam-banner" --send "after the banner")"
check "tunnel: the app's half-close reaches the server, the server's close reaches the app" "ok got 5 bytes eof" \
    "$(tcp_client --target "$B_IP:7000" --send "half" --half-close)"
check "tunnel: the server's half-close (after 64 MB) reaches the app, which still sends after it" \
    "ok download 64 MB, eof, sent after it" "$(tcp_client --target "$B_IP:7000" --download 64 --timeout 60)"
check_contains "tunnel: the server got the app's bytes sent after its own half-close" "after-send 30" \
    "$(for ((i = 0; i < 50; i++)); do grep -q after-send "$WORK/tcp-echo.log" && break; sleep 0.1; done
       cat "$WORK/tcp-echo.log")"
rss_a=$(rss_kb "$SC_A")
rss_b=$(rss_kb "$SC_B")
check "1 GB through the tunnel, then a half-close: all of it counted by the server" "ok big 1024 MB" \
    "$(tcp_client --target "$B_IP:7000" --big 1024 --timeout 120)"
rss_grew_less "A's RSS grew less than 10 MB over the 1 GB tunnel" "$SC_A" "$rss_a"
rss_grew_less "B's RSS grew less than 10 MB over the 1 GB tunnel" "$SC_B" "$rss_b"
check_ge "A's metrics: tunneled TCP connections" 5 "$(ns_metric "$NS_A" 15000 "$TUN_A")"
check_ge "B's metrics: allowed TCP tunnels" 5 "$(ns_metric "$NS_B" 15000 "$TUN_B")"
check_contains "TCP to a port B's policy leaves out ($B_IP:7002): refused" "fail" \
    "$(tcp_client --target "$B_IP:7002" --send "not this port" --timeout 3)"
check_contains "B's access log: the tunnel to 7002 denied" '"status":403,"decision":"deny","rule":"default"' \
    "$(wait_log "$WORK/sidecar-b.log" "\"authority\":\"$B_IP:7002\"")"
check_contains "A's access log: the peer refused the tunnel" '"error":"denied-by-peer"' \
    "$(wait_log "$WORK/sidecar-a.log" "\"original_dst\":\"$B_IP:7002\"")"
check_ge "B's metrics: a denied TCP tunnel" 1 \
    "$(ns_metric "$NS_B" 15000 'seam_tcp_connections_total{direction="inbound",decision="deny"}')"

# --- identity c, which B's policy denies
deny_before=$(ns_metric "$NS_B" 15000 'seam_authz_decisions_total{decision="deny"}')
check "identity c calls B: 403" 403 "$(ns_curl "$NS_A" -H 'host: b.pod.test' "http://127.0.0.1:15002/api/hello")"
check_contains "the 403 names c" "$ID_C" "$(cat "$WORK/body")"
check "B's metrics: a deny decision more" "$((deny_before + 1))" \
    "$(ns_metric "$NS_B" 15000 'seam_authz_decisions_total{decision="deny"}')"

# --- gRPC through the intercepted pods: B's app is now a gRPC server (h2c on 127.0.0.1:8080); A's gRPC
# client dials B's address in plaintext and its sidecar carries the call over mTLS
GRPC_PY=/usr/bin/python3 # Debian's python3-grpcio
grpc_dir=$top/tests/integration
stop_pid "$APP_B"
start_bg grpc-app-b ip netns exec "$NS_B" "$GRPC_PY" "$grpc_dir/grpc_app.py" --port 8080 --cancel-log "$WORK/cancel.log"
ns_wait_port "$NS_B" 8080 10
# pod_grpc NS SCENARIO ARGS...: one grpc_client.py scenario from inside pod NS; prints its verdict line.
pod_grpc() {
    local ns=$1
    shift
    in_ns "$ns" "$GRPC_PY" "$grpc_dir/grpc_client.py" "$@" 2>>"$WORK/grpc_client.err" | tail -1
}
grpc_ok() { # grpc_ok NAME SCENARIO ARGS...: passes when the scenario (from pod A to B's address) says ok
    local name=$1 scenario=$2
    shift 2
    check_contains "$name" "ok $scenario " "$(pod_grpc "$NS_A" "$scenario" --target "$B_IP:8080" "$@")"
}
grpc_ok "gRPC unary from A's app to B's address: echoed" unary
grpc_ok "gRPC server streaming: 1000 messages" server_stream --count 1000
grpc_ok "gRPC client streaming" client_stream
grpc_ok "gRPC bidi: 50 interleaved rounds" bidi
grpc_ok "gRPC status, message and custom trailers reach A's client" fail
grpc_ok "gRPC 4 MB each way" big
grpc_ok "gRPC deadline shorter than the app's work: DEADLINE_EXCEEDED" deadline
check_contains "B's app saw the deadline's cancel" "cancelled /seam.test.Echo/Sleep" \
    "$(for ((i = 0; i < 50; i++)); do grep -q cancelled "$WORK/cancel.log" 2>/dev/null && break; sleep 0.1; done
       cat "$WORK/cancel.log" 2>/dev/null)"
check_contains "gRPC from identity c, which B's policy denies: PERMISSION_DENIED naming c" "ok denied " \
    "$(pod_grpc "$NS_A" denied --target 127.0.0.1:15002 --authority b.pod.test --expect-details "$ID_C")"
check_contains "gRPC to an address no route covers: UNIMPLEMENTED" "ok unimplemented " \
    "$(pod_grpc "$NS_A" unimplemented --target "$NOWHERE_IP:8080" --expect-details "$NOWHERE_IP:8080")"
grpc_ok "gRPC bidi open 20 s (past the 15 s --upstream-timeout), a message every 5 s" long_bidi --seconds 20 --every 5
check_contains "B's access log: the gRPC call went to the app over h2c" '"app_protocol":"h2c"' \
    "$(grep -F '/seam.test.Echo/Unary' "$WORK/sidecar-b.log" | tail -1)"

# --- probes: B's probe listener answers a kubelet-style probe from outside the pod through the
# rewritten path (A's rules now exclude that port outbound, so the probe bypasses A's sidecar)
start_bg probe-app-b ip netns exec "$NS_B" python3 "$app" 8081 127.0.0.1
PROBE_APP_B=$LAST_PID
start_pod_sidecar sidecar-b-probe "$NS_B" "$WORK/b" --inbound off --admin 127.0.0.1:15101 \
    --probe-listen 0.0.0.0:15020 --app-probes '{"/app-health/web/readiness": {"httpGet": {"port": 8081, "path": "/healthz"}}}'
ns_wait_port "$NS_B" 8081 10
ns_wait_port "$NS_B" 15020 10
in_ns "$NS_A" "$top/tools/seam-iptables" --remove
if in_ns "$NS_A" "$top/tools/seam-iptables" --app-ports 8080 --sidecar-uid "$SIDECAR_UID" --exclude-outbound-ports 15020 \
    --exclude-outbound-cidrs "$UNMESHED_IP/32" 2>"$WORK/ipt-a2.err"; then
    pass "seam-iptables reinstalls A's rules with --exclude-outbound-ports 15020 --exclude-outbound-cidrs $UNMESHED_IP/32"
else
    fail "seam-iptables reinstalls A's rules with --exclude-outbound-ports 15020 --exclude-outbound-cidrs $UNMESHED_IP/32" \
        "$(cat "$WORK/ipt-a2.err")"
fi
excluded_before=$(grep -c "\"original_dst\":\"$UNMESHED_IP:7000\"" "$WORK/sidecar-a.log")
check "TCP to the excluded CIDR ($UNMESHED_IP:7000): echoed" "ok echo" \
    "$(tcp_client --target "$UNMESHED_IP:7000" --send "straight to the destination")"
check "the excluded CIDR bypassed A's sidecar (no new access-log line for it)" "$excluded_before" \
    "$(grep -c "\"original_dst\":\"$UNMESHED_IP:7000\"" "$WORK/sidecar-a.log")"
check "a probe from pod A to B's probe port, app up: 200" 200 "$(ns_curl "$NS_A" "http://$B_IP:15020/app-health/web/readiness")"
check_contains "the answer came from B's probe listener" "ok: 127.0.0.1:8081 answered 200" "$(cat "$WORK/body")"
check "the excluded port bypassed A's sidecar (no access-log line for it)" 0 \
    "$(grep -c "\"original_dst\":\"$B_IP:15020\"" "$WORK/sidecar-a.log")"
check "B's admin API is not on the probe port: 404" 404 "$(ns_curl "$NS_A" "http://$B_IP:15020/metrics")"
stop_pid "$PROBE_APP_B"
check "a probe from pod A once B's app is down: 503" 503 "$(ns_curl "$NS_A" "http://$B_IP:15020/app-health/web/readiness")"

# --- drain: each sidecar exits 0 on SIGTERM
for pid in "$SC_A" "$SC_B"; do kill -TERM "$pid" 2>/dev/null; done
rc_a=1 rc_b=1
for ((i = 0; i < 100; i++)); do
    kill -0 "$SC_A" 2>/dev/null || kill -0 "$SC_B" 2>/dev/null || break
    sleep 0.1
done
if ! kill -0 "$SC_A" 2>/dev/null && ! kill -0 "$SC_B" 2>/dev/null; then
    wait "$SC_A"
    rc_a=$?
    wait "$SC_B"
    rc_b=$?
fi
check "sidecars A and B drain and exit 0 on SIGTERM" "0 0" "$rc_a $rc_b"

# --- --outbound-unknown deny: a new sidecar in A refuses TCP no route covers
in_ns "$NS_A" "$top/tools/seam-iptables" --remove
in_ns "$NS_A" "$top/tools/seam-iptables" --app-ports 8080 --sidecar-uid "$SIDECAR_UID" # no exclusions again
start_pod_sidecar sidecar-a-deny "$NS_A" "$WORK/a" "${POD_ARGS[@]}" --routes "$WORK/a/routes.json" \
    --policy "$WORK/a/policy.json" --outbound-unknown deny
ns_wait_port "$NS_A" 15001 10
check_contains "--outbound-unknown deny: TCP to $UNMESHED_IP:7000 is refused" "fail" \
    "$(tcp_client --target "$UNMESHED_IP:7000" --send "denied" --timeout 3)"
check_contains "its access log: refused as outbound-unknown" '"error":"outbound-unknown"' \
    "$(wait_log "$WORK/sidecar-a-deny.log" "\"original_dst\":\"$UNMESHED_IP:7000\"")"
check "its metrics: one TCP connection denied" 1 \
    "$(ns_metric "$NS_A" 15000 'seam_tcp_connections_total{direction="outbound",decision="deny"}')"

if [ "$FAILED" -ne 0 ]; then
    for f in sidecar-a sidecar-b sidecar-c sidecar-a-deny; do
        echo "# --- $f.err"
        sed 's/^/# /' "$WORK/$f.err" | tail -20
    done
fi
summary
