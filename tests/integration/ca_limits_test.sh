#!/usr/bin/env bash
# seam-ca limits: rate limit per identity, body size, idle and slow clients, connection cap, not-ready CA.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ca_common.sh"

make_ca_dir "$WORK/ca"
CA_BUNDLE=$WORK/ca/bundle.pem
TOKENS=$WORK/join-tokens
start_ca ca --ca-dir "$WORK/ca" --trust-domain $TD --journal "$WORK/journal" --join-tokens "$TOKENS" \
    --rate-limit 1 --rate-burst 2 --idle-timeout 1s --max-connections 8

make_key "$WORK/web.key"
make_csr "$WORK/web.csr" "$WORK/web.key" "URI:$WEB_ID"
make_body "$WORK/web.json" "$WORK/web.csr"
for i in 1 2; do
    sign "$WORK/web.json" -H "Authorization: Bearer $("$SEAM_CA" token create --join-tokens "$TOKENS" --spiffe-id "$WEB_ID")"
    check "within the burst ($i)" 200 "$STATUS"
done
held=$("$SEAM_CA" token create --join-tokens "$TOKENS" --spiffe-id "$WEB_ID")
expect_refusal "over the per-identity rate" 429 rate-limited "$WORK/web.json" -H "Authorization: Bearer $held"
check "a rate-limited request does not spend its token" 2 "$(grep -c '"op":"use"' "$TOKENS")"
make_key "$WORK/db.key"
make_csr "$WORK/db.csr" "$WORK/db.key" "URI:$DB_ID"
make_body "$WORK/db.json" "$WORK/db.csr"
sign "$WORK/db.json" -H "Authorization: Bearer $("$SEAM_CA" token create --join-tokens "$TOKENS" --spiffe-id "$DB_ID")"
check "another identity is not limited" 200 "$STATUS"

# Body limits: JSON 413 above 64 KiB; far above, the front end refuses before reading any of it.
python3 -c 'import json,sys; json.dump({"csr": "x" * (65 * 1024)}, open(sys.argv[1], "w"))' "$WORK/big.json"
expect_refusal "body over 64 KiB" 413 body-too-large "$WORK/big.json"
huge=$(python3 - "$CA_PORT" "$CA_BUNDLE" <<'PY'
import socket, ssl, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s = ssl.create_default_context(cafile=sys.argv[2]).wrap_socket(s, server_hostname="localhost")
s.sendall(b"POST /v1/sign HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2097152\r\n\r\n")
print(s.recv(4096).split(b"\r\n")[0].decode())
PY
)
check "body over 1 MiB refused before it is read" "HTTP/1.1 413 Payload Too Large" "$huge"

# Idle and slow clients are cut off (--idle-timeout 1s).
idle_close() {
    python3 - "$CA_PORT" "$CA_BUNDLE" "$1" <<'PY'
import socket, ssl, sys, time
port, bundle, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.create_connection(("127.0.0.1", port), timeout=10)
if mode in ("tls", "slow"):
    ctx = ssl.create_default_context(cafile=bundle)
    s = ctx.wrap_socket(s, server_hostname="localhost")
    if mode == "slow":
        s.sendall(b"POST /v1/sign HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n{")
start = time.time()
try:
    while s.recv(4096):
        pass
except (ConnectionResetError, ssl.SSLError):
    data = b""
elapsed = time.time() - start
print("closed" if elapsed < 5 else "open after %.1fs" % elapsed)
PY
}
check "silent TCP client dropped" closed "$(idle_close tcp)"
check "idle TLS client dropped" closed "$(idle_close tls)"
check "slow body dropped" closed "$(idle_close slow)"

# Connection cap: 8 idle sockets fill it; the 9th is closed at once.
sleep 0.3 # let the server see earlier clients go
python3 - "$CA_PORT" >"$WORK/cap.txt" <<'PY'
import socket, sys
port = int(sys.argv[1])
held = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(8)]
extra = socket.create_connection(("127.0.0.1", port), timeout=5)
# Closed at once, well before the 1 s idle timeout could explain it.
extra.settimeout(0.5)
try:
    print("closed" if extra.recv(1) == b"" else "open")
except ConnectionResetError:
    print("closed")
except socket.timeout:
    print("open")
PY
check "connection over --max-connections closed" closed "$(cat "$WORK/cap.txt")"
sleep 1.5 # the held sockets time out
check "serves again after the cap drains" 200 "$(ca_curl -o /dev/null -w '%{http_code}' "$CA_URL/healthz")"

# SIGTERM with an idle keep-alive client: the drain waits for it (bounded by the idle timeout), then exits 0.
cat >"$WORK/holder.py" <<'PY'
import socket, ssl, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s = ssl.create_default_context(cafile=sys.argv[2]).wrap_socket(s, server_hostname="localhost")
s.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
s.recv(4096)
print("held", flush=True)
time.sleep(8)
PY
start_bg holder python3 "$WORK/holder.py" "$CA_PORT" "$CA_BUNDLE"
for ((i = 0; i < 50; i++)); do grep -q held "$WORK/holder.log" && break; sleep 0.1; done
check "keep-alive client connected" 1 "$(grep -c held "$WORK/holder.log")"
kill -TERM "$CA_PID"
for ((i = 0; i < 60; i++)); do kill -0 "$CA_PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$CA_PID" 2>/dev/null; then fail "drain ends within the idle timeout"; else pass "drain ends within the idle timeout"; fi
wait "$CA_PID"
exited "SIGTERM with a client open" $? "$WORK/ca.log"
check_contains "drain logged" "stopping (no new connections, 1 open)" "$(cat "$WORK/ca.log")"

# An intermediate that does not chain to the bundle: the CA starts, says why, and refuses to sign.
make_ca_dir "$WORK/stranger"
mkdir "$WORK/broken"
cp "$WORK/ca/intermediate.pem" "$WORK/ca/intermediate.key" "$WORK/broken/"
cp "$WORK/stranger/bundle.pem" "$WORK/broken/bundle.pem"
CA_BUNDLE=$WORK/broken/bundle.pem
start_ca broken --ca-dir "$WORK/broken" --trust-domain $TD --journal "$WORK/journal2" --join-tokens "$TOKENS"
STATUS=$(curl -sS --max-time 10 -k --resolve "localhost:$CA_PORT:127.0.0.1" -o "$WORK/health.json" -w '%{http_code}' "$CA_URL/healthz")
check "healthz when the intermediate does not chain" 503 "$STATUS"
check_contains "healthz says why" "does not chain to a root of the bundle" "$(json_field "$WORK/health.json" reason)"
tok=$("$SEAM_CA" token create --join-tokens "$TOKENS" --spiffe-id "$WEB_ID")
STATUS=$(curl -sS --max-time 10 -k --resolve "localhost:$CA_PORT:127.0.0.1" -o "$WORK/reply.json" -w '%{http_code}' \
    -H "Authorization: Bearer $tok" --data-binary "@$WORK/web.json" "$CA_URL/v1/sign")
check "sign refused when not ready: status" 500 "$STATUS"
check "sign refused when not ready: error" ca-not-ready "$(json_field "$WORK/reply.json" error)"
check_contains "start-up warns" "the CA will refuse to sign" "$(cat "$WORK/broken.log")"
stopped "the CA that is not ready" "$CA_PID" "$WORK/broken.log"
finish
