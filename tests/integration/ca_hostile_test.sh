#!/usr/bin/env bash
# seam-ca against hostile clients: kept-alive TLS connections reset by the client, and HTTP/2 bodies nobody ends.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ca_common.sh"

PY=/usr/bin/python3 # the system one has the h2 package
make_ca_dir "$WORK/ca"
CA_BUNDLE=$WORK/ca/bundle.pem
# Under AddressSanitizer freed memory sits in a quarantine (256 MiB by default) before reuse, so the body
# bytes that pass through would show up as growth; a small quarantine lets VmRSS measure what is held.
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=1" \
    start_ca ca --ca-dir "$WORK/ca" --trust-domain $TD --journal "$WORK/journal"
check "healthz before" 200 "$(ca_curl -o /dev/null -w '%{http_code}' "$CA_URL/healthz")"
open_fds() { ls "/proc/$CA_PID/fd" | wc -l; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$CA_PID/status"; }

# 5,000 clients (more than --max-connections' 1,024) each read an answer on a kept-alive connection, then reset it.
# Every reset connection must give its descriptor back, or the CA ends up refusing everyone.
cat >"$WORK/resets.py" <<'PY'
# COUNT TLS clients (no certificate) each ask GET /v1/bundle on a kept-alive connection, read the answer, then reset it.
import socket, ssl, struct, sys
port, bundle, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
ctx = ssl.create_default_context(cafile=bundle)
answered = 0
for _ in range(count):
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    # SO_LINGER 0: close() sends RST instead of FIN (and Python sends no close_notify)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s = raw
    try:
        s = ctx.wrap_socket(raw, server_hostname="localhost")
        s.sendall(b"GET /v1/bundle HTTP/1.1\r\nHost: localhost\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("closed before the answer")
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.lower().split(b"\r\n")
        lengths = [int(l.split(b":")[1]) for l in lines if l.startswith(b"content-length:")]
        # the whole answer: content-length bytes, or up to the last chunk
        while (len(body) < lengths[0]) if lengths else not body.endswith(b"0\r\n\r\n"):
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("closed inside the answer")
            body += chunk
        if head.startswith(b"HTTP/1.1 200") and b"connection: close" not in head.lower():
            answered += 1  # answered, and the server keeps the connection
    except (OSError, ssl.SSLError, ConnectionError, IndexError):
        pass
    s.close()
print(answered)
PY
fds_before=$(open_fds)
check "every reset client was answered on a kept-alive connection" 5000 \
    "$("$PY" "$WORK/resets.py" "$CA_PORT" "$CA_BUNDLE" 5000)"
for ((i = 0; i < 50; i++)); do (($(open_fds) <= fds_before + 10)) && break; sleep 0.1; done
fds_after=$(open_fds)
if ((fds_after <= fds_before + 10)); then
    pass "descriptors given back after the resets ($fds_before before, $fds_after after)"
else
    fail "descriptors given back after the resets ($fds_before before, $fds_after after)"
fi
check "healthz after the resets" 200 "$(ca_curl -o /dev/null -w '%{http_code}' "$CA_URL/healthz")"

# One HTTP/2 connection, 100 sign requests declaring 1 MiB each, all of it sent before any stream ends:
# the CA keeps none of it (JSON 413 for each once ended), where h2o's server held all 100 MiB.
cat >"$WORK/h2bodies.py" <<'PY'
# One HTTP/2 connection, STREAMS POST /v1/sign streams declaring and sending 1 MiB each, ended only after
# the server's memory was read; prints the server's VmRSS growth (KiB) at that point, then each stream's status.
import socket, ssl, sys, time
import h2.config, h2.connection, h2.events
port, bundle, pid, streams = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
BODY = 1024 * 1024

def rss_kib():
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

ctx = ssl.create_default_context(cafile=bundle)
ctx.set_alpn_protocols(["h2"])
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10), server_hostname="localhost")
assert s.selected_alpn_protocol() == "h2", s.selected_alpn_protocol()
conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True))
conn.initiate_connection()
s.sendall(conn.data_to_send())
status, body, done = {}, {}, set()

def pump(timeout):
    s.settimeout(timeout)
    try:
        data = s.recv(65536)
    except socket.timeout:
        return True
    finally:
        s.settimeout(30)  # writes wait for a slow server (sanitizers) rather than fail
    if not data:
        return False
    for ev in conn.receive_data(data):
        if isinstance(ev, h2.events.ResponseReceived):
            status[ev.stream_id] = dict(ev.headers)[b":status"].decode()
        elif isinstance(ev, h2.events.DataReceived):
            body[ev.stream_id] = body.get(ev.stream_id, b"") + ev.data
            conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, (h2.events.StreamEnded, h2.events.StreamReset)):
            done.add(ev.stream_id)
            if isinstance(ev, h2.events.StreamReset):
                status.setdefault(ev.stream_id, "reset")
    s.sendall(conn.data_to_send())
    return True

pump(1)  # the server's SETTINGS
before = rss_kib()
ids = []
for _ in range(streams):
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, [(":method", "POST"), (":path", "/v1/sign"), (":scheme", "https"),
                            (":authority", "localhost"), ("content-type", "application/json"),
                            ("content-length", str(BODY))])
    ids.append(sid)
s.sendall(conn.data_to_send())
left = {sid: BODY for sid in ids}
chunk = b"x" * 16384
deadline = time.time() + 60
while any(left.values()) and time.time() < deadline:
    sent = False
    for sid in ids:
        if not left[sid] or sid in done:
            continue
        n = min(left[sid], conn.local_flow_control_window(sid), conn.max_outbound_frame_size)
        if n > 0:
            conn.send_data(sid, chunk[:n])
            left[sid] -= n
            sent = True
    s.sendall(conn.data_to_send())
    if not pump(0.01 if sent else 2):
        break
for _ in range(20):  # let the server read what is in flight
    pump(0.05)
grown = rss_kib() - before
print("sent_kib %d" % ((BODY * streams - sum(left.values())) // 1024))
print("rss_growth_kib %d" % grown)
for sid in ids:
    if sid not in done:
        conn.end_stream(sid)
s.sendall(conn.data_to_send())
deadline = time.time() + 30
while len(done) < len(ids) and time.time() < deadline:
    if not pump(1):
        break
for sid in ids:
    print("stream %d %s %s" % (sid, status.get(sid, "none"), b"body-too-large" in body.get(sid, b"")))
PY
"$PY" "$WORK/h2bodies.py" "$CA_PORT" "$CA_BUNDLE" "$CA_PID" 100 >"$WORK/h2bodies.txt" 2>&1 ||
    sed 's/^/  # /' "$WORK/h2bodies.txt" >&2
check "all 100 MiB were sent" 102400 "$(awk '/^sent_kib/ {print $2}' "$WORK/h2bodies.txt")"
grown=$(awk '/^rss_growth_kib/ {print $2}' "$WORK/h2bodies.txt")
if [[ -n $grown ]] && ((grown < 8192)); then
    pass "memory grew by less than 8 MiB while the bodies were in flight (${grown} KiB)"
else
    fail "memory grew by less than 8 MiB while the bodies were in flight (${grown:-?} KiB)"
fi
check "each stream answered 413 body-too-large" 100 "$(grep -c '^stream [0-9]* 413 True$' "$WORK/h2bodies.txt")"
check "healthz after the bodies" 200 "$(ca_curl -o /dev/null -w '%{http_code}' "$CA_URL/healthz")"

stopped "at the end" "$CA_PID" "$WORK/ca.log"
finish
