#!/usr/bin/env bash
# seam-ca across restarts: serials never repeat, the journal keeps everything, join tokens stay spent.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ca_common.sh"

make_ca_dir "$WORK/ca"
CA_BUNDLE=$WORK/ca/bundle.pem
TOKENS=$WORK/join-tokens
JOURNAL=$WORK/journal
make_key "$WORK/web.key"
make_csr "$WORK/web.csr" "$WORK/web.key" "URI:$WEB_ID"
make_body "$WORK/web.json" "$WORK/web.csr"

issue_some() {
    local round=$1 i tok
    for i in 1 2 3; do
        tok=$("$SEAM_CA" token create --join-tokens "$TOKENS" --spiffe-id "$WEB_ID")
        sign "$WORK/web.json" -H "Authorization: Bearer $tok"
        check "round $round issue $i" 200 "$STATUS"
        json_field "$WORK/reply.json" serial >>"$WORK/serials"
        LAST_TOKEN=$tok
    done
}

start_ca ca1 --ca-dir "$WORK/ca" --trust-domain $TD --journal "$JOURNAL" --join-tokens "$TOKENS"
issue_some 1
spent=$LAST_TOKEN
stopped "first start" "$CA_PID" "$WORK/ca1.log"

# A crash mid-write leaves a torn last line; it must be reported and kept, not truncated.
printf '{"ts":"2026-11-27T19:24:18Z","serial":"0123' >>"$JOURNAL"
start_ca ca2 --ca-dir "$WORK/ca" --trust-domain $TD --journal "$JOURNAL" --join-tokens "$TOKENS"
check_contains "corrupt tail reported with its line" "line 5: corrupt" "$(cat "$WORK/ca2.log")"
# Start-up compaction dropped its records: still refused, now as a token the CA does not know.
expect_refusal "join token spent before the restart" 401 join-token-unknown "$WORK/web.json" -H "Authorization: Bearer $spent"
issue_some 2
stopped "restart over a torn line" "$CA_PID" "$WORK/ca2.log"

check "six certificates issued" 6 "$(sort -u "$WORK/serials" | grep -c .)"
check "journal holds all issuances (6 + 2 serving)" 8 "$(grep -c '"credential"' "$JOURNAL")"
# one check for all six: the serials the journal lacks ([] for an empty one), none expected
missing=$(while read -r s; do grep -q "\"serial\":\"$s\"" "$JOURNAL" || echo "[$s]"; done <"$WORK/serials")
check "every issued serial is in the journal" "" "$missing"
check "no serial repeats in the journal" "" \
    "$(grep -o '"serial":"[0-9a-f]*"' "$JOURNAL" | sort | uniq -d)"
check "torn line kept in place, on its own line" 1 "$(grep -c '"serial":"0123$' "$JOURNAL")"

# A third start reads a journal whose history now includes the torn line and everything after it.
start_ca ca3 --ca-dir "$WORK/ca" --trust-domain $TD --journal "$JOURNAL" --join-tokens "$TOKENS"
# 8 read back, plus the serving certificate this start issued itself.
check_contains "restart counts the records" "journal $JOURNAL: 9 records" "$(cat "$WORK/ca3.log")"
stopped "third start" "$CA_PID" "$WORK/ca3.log"
# The CA's own certificate is short-lived too: renewed at half-life, in memory, journaled.
serving_serial() {
    openssl s_client -connect "127.0.0.1:$CA_PORT" -servername localhost </dev/null 2>/dev/null |
        openssl x509 -noout -serial 2>/dev/null
}
start_ca ca4 --ca-dir "$WORK/ca" --trust-domain $TD --journal "$WORK/journal4" --serving-ttl 4s
# A client that connects now and says nothing until the certificate was renewed: the handshake then
# runs on the serving context of its accept, which the renewal replaced (it must still be there).
cat >"$WORK/late_hello.py" <<'PY'
import socket, ssl, sys, time
port, bundle, log = int(sys.argv[1]), sys.argv[2], sys.argv[3]
raw = socket.create_connection(("127.0.0.1", port), timeout=10)
for _ in range(100):  # the renewal comes at half of --serving-ttl 4s; the old certificate is good until 4 s
    if "serving certificate renewed" in open(log).read():
        break
    time.sleep(0.05)
ctx = ssl.create_default_context(cafile=bundle)
s = ctx.wrap_socket(raw, server_hostname="localhost")
s.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
print(data.split(b"\r\n", 1)[0].decode())
PY
python3 "$WORK/late_hello.py" "$CA_PORT" "$CA_BUNDLE" "$WORK/ca4.log" >"$WORK/late_hello.out" 2>"$WORK/late_hello.err" &
late_pid=$!
PIDS+=("$late_pid")
first=$(serving_serial)
renewed=""
for ((i = 0; i < 80; i++)); do
    now=$(serving_serial)
    if [ -n "$now" ] && [ "$now" != "$first" ]; then renewed=$now; break; fi
    sleep 0.1
done
if [ -n "$first" ] && [ -n "$renewed" ]; then pass "serving certificate renewed"; else fail "serving certificate renewed" "$first / $renewed"; fi
check_contains "renewal logged" "serving certificate renewed" "$(cat "$WORK/ca4.log")"
check "serving certificates journaled" 1 "$([ "$(grep -c '"credential":"serving"' "$WORK/journal4")" -ge 2 ] && echo 1)"
wait "$late_pid"
check "a client accepted before the renewal and silent until after it is served" "HTTP/1.1 200 OK" \
    "$(head -1 "$WORK/late_hello.out")$([ -s "$WORK/late_hello.err" ] && echo " $(tail -1 "$WORK/late_hello.err")")"
check "healthz after renewal" '{"status":"ok"}' "$(ca_curl "$CA_URL/healthz")"
stopped "serving certificate renewed" "$CA_PID" "$WORK/ca4.log"
if grep -q "PRIVATE KEY" "$WORK"/journal*; then fail "no key written"; else pass "no key written"; fi
finish
