#!/usr/bin/env bash
# The probe listener (--probe-listen, --app-probes): kubelet's rewritten probes answered by probing a
# real app over loopback (httpGet: 200 on 2xx/3xx, tcpSocket: 200 on connect, else 503 with a reason),
# 404 for any other path, none of the admin API, and a one-line error for every bad value.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/sidecar_lib.sh"
cd "$WORK" || exit 1

make_ca ca
make_leaf server "$SERVER_ID"
ADMIN_PORT=$(free_port)
PROBE_PORT=$(free_port)
APP_PORT=$(free_port)
CLOSED_PORT=$(free_port) # nothing listens here
IDENT=(--cert server.pem --key server.key --bundle ca/bundle.pem)
echo '[{"/app-health/web/readiness": {"tcpSocket": {"port": 80}}}]' >probes-list.json

cat >probes.json <<JSON
{
  "/app-health/web/readiness": {"httpGet": {"port": $APP_PORT, "path": "/healthz?full=1", "scheme": "HTTP",
                                "httpHeaders": [{"name": "Host", "value": "probe.example"}]}, "timeoutSeconds": 2},
  "/app-health/web/liveness": {"tcpSocket": {"port": $APP_PORT}},
  "/app-health/web/startup": {"httpGet": {"port": $APP_PORT, "path": "/nocontent"}},
  "/app-health/slow/readiness": {"httpGet": {"port": $APP_PORT, "path": "/slow?ms=3000"}, "timeoutSeconds": 1},
  "/app-health/garbage/liveness": {"httpGet": {"port": $APP_PORT, "path": "/garbage"}},
  "/app-health/gone/readiness": {"httpGet": {"port": $CLOSED_PORT}},
  "/app-health/gone/liveness": {"tcpSocket": {"port": $CLOSED_PORT}}
}
JSON

start_app "$APP_PORT"
start_sidecar sidecar --inbound off --probe-listen "127.0.0.1:$PROBE_PORT" --app-probes probes.json
wait_port "$PROBE_PORT" 10
# probe PATH [CURL ARGS...]: what kubelet would see; status code, body in $WORK/body
probe() {
    local path=$1
    shift
    curl -sS --max-time 10 -o body -w '%{http_code}' "$@" "http://127.0.0.1:$PROBE_PORT$path" 2>curl.err
}

check "httpGet probe, app up: 200" 200 "$(probe /app-health/web/readiness)"
check_contains "the 200 says what the app answered" "answered 200" "$(cat body)"
check "tcpSocket probe, app up: 200" 200 "$(probe /app-health/web/liveness)"
check "httpGet probe, app answers 204: 200" 200 "$(probe /app-health/web/startup)"
check "HEAD works like GET" 200 "$(probe /app-health/web/readiness -I)"
started=$(date +%s%N)
check "httpGet probe, app slower than timeoutSeconds: 503" 503 "$(probe /app-health/slow/readiness)"
elapsed_ms=$((($(date +%s%N) - started) / 1000000))
check_contains "the 503 names the timeout" "no answer from 127.0.0.1:$APP_PORT within 1000 ms" "$(cat body)"
check_match "it came after the probe's timeout, not the app's 3 s ($elapsed_ms ms)" '^(9[0-9][0-9]|1[0-9]{3}|2[0-4][0-9]{2})$' \
    "$elapsed_ms"
check "the loop was not blocked: another probe answers during a slow one" "503 200" \
    "$( (probe /app-health/slow/readiness >slow.code) & p=$!; sleep 0.2; c=$(probe /app-health/web/liveness); wait $p; echo "$(cat slow.code) $c")"
check "httpGet probe, app answers garbage: 503" 503 "$(probe /app-health/garbage/liveness)"
check_contains "the 503 says it was not HTTP" "did not answer with HTTP/1.x" "$(cat body)"
check "httpGet probe, nothing listening: 503" 503 "$(probe /app-health/gone/readiness)"
check_contains "the 503 names the refused connection" "cannot connect to 127.0.0.1:$CLOSED_PORT" "$(cat body)"
check "the 503 is one line" 1 "$(grep -c . body)"
check "tcpSocket probe, nothing listening: 503" 503 "$(probe /app-health/gone/liveness)"

check "an unknown probe path: 404" 404 "$(probe /app-health/other/readiness)"
check "a known path with a query: 404 (kubelet asks for the exact path)" 404 "$(probe '/app-health/web/readiness?x=1')"
check "a known path with a dot segment: 404" 404 "$(probe /app-health/web/../web/readiness --path-as-is)"
for path in /ready /live /metrics /certs /config /policy /; do
    check "the admin API's $path is not on the probe listener: 404" 404 "$(probe "$path")"
done
check "POST /rotate on the probe listener: 404" 404 "$(probe /rotate -X POST)"
check "POST to a probe path: 405" 405 "$(probe /app-health/web/readiness -X POST)"
check "the admin endpoint still answers on loopback" 200 \
    "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$ADMIN_PORT/ready")"

stop_pid "$APP_PID"
check "httpGet probe once the app is stopped: 503" 503 "$(probe /app-health/web/readiness)"
check_contains "the 503 says why" "cannot connect to 127.0.0.1:$APP_PORT" "$(cat body)"
check "tcpSocket probe once the app is stopped: 503" 503 "$(probe /app-health/web/liveness)"
start_app "$APP_PORT"
check "httpGet probe once the app is back: 200" 200 "$(probe /app-health/web/readiness)"

kill -TERM "$SC_PID"
wait "$SC_PID"
check "the sidecar drains and exits 0 with the probe listener open" 0 "$?"

# run NAME WANT_NEEDLE ARGS...: the sidecar must refuse to start: exit 2, one line naming the problem
refuse() {
    local name=$1 want=$2
    shift 2
    timeout 10 "$SIDECAR" "${IDENT[@]}" --inbound off --admin "127.0.0.1:$ADMIN_PORT" "$@" >out 2>err
    local rc=$?
    if [ "$rc" -eq 2 ] && [ "$(grep -c . err)" = 1 ] && grep -qF -- "$want" err; then
        pass "refuses $name"
    else
        fail "refuses $name" "rc=$rc $(cat err)"
    fi
}
P=(--probe-listen "127.0.0.1:$PROBE_PORT")
refuse "--probe-listen without a port" '--probe-listen: "127.0.0.1" is not HOST:PORT' --probe-listen 127.0.0.1
refuse "--app-probes without --probe-listen" "--app-probes needs --probe-listen" --app-probes probes.json
refuse "a missing --app-probes file" "--app-probes nowhere.json: cannot read the file" "${P[@]}" --app-probes nowhere.json
refuse "--app-probes that is not JSON" "--app-probes: invalid JSON" "${P[@]}" --app-probes '{"a":'
refuse "--app-probes that is a list" "--app-probes probes-list.json: must be a JSON object" "${P[@]}" \
    --app-probes probes-list.json
refuse "a probe path outside /app-health/" '"/healthz": a probe path must be /app-health/<container>/' \
    "${P[@]}" --app-probes '{"/healthz": {"tcpSocket": {"port": 80}}}'
refuse "a probe kind that is not one" "a probe path must be" "${P[@]}" --app-probes '{"/app-health/web/ready": {"tcpSocket": {"port": 80}}}'
refuse "a container name that is not a DNS label" "a probe path must be" \
    "${P[@]}" --app-probes '{"/app-health/Web_1/readiness": {"tcpSocket": {"port": 80}}}'
refuse "a probe with no handler" '"/app-health/web/readiness": give exactly one of httpGet and tcpSocket' \
    "${P[@]}" --app-probes '{"/app-health/web/readiness": {}}'
refuse "a probe with two handlers" "give exactly one of httpGet and tcpSocket" \
    "${P[@]}" --app-probes '{"/app-health/web/readiness": {"tcpSocket": {"port": 80}, "httpGet": {"port": 80}}}'
refuse "port 0" '"/app-health/web/readiness".tcpSocket.port: must be a number from 1 to 65535' \
    "${P[@]}" --app-probes '{"/app-health/web/readiness": {"tcpSocket": {"port": 0}}}'
refuse "a named port" '"/app-health/web/liveness".httpGet.port: must be a number' \
    "${P[@]}" --app-probes '{"/app-health/web/liveness": {"httpGet": {"port": "http"}}}'
refuse "a path without a leading slash" '.httpGet.path: must start with "/"' \
    "${P[@]}" --app-probes '{"/app-health/web/liveness": {"httpGet": {"port": 80, "path": "healthz"}}}'
refuse "a path with a space" '.httpGet.path: must start with "/" and hold visible ASCII' \
    "${P[@]}" --app-probes '{"/app-health/web/liveness": {"httpGet": {"port": 80, "path": "/a b"}}}'
refuse "scheme HTTPS" ".httpGet.scheme: must be HTTP" \
    "${P[@]}" --app-probes '{"/app-health/web/liveness": {"httpGet": {"port": 80, "scheme": "HTTPS"}}}'
refuse "a header name with a space" ".httpGet.httpHeaders[0]: name must be a header name" \
    "${P[@]}" --app-probes '{"/app-health/web/liveness": {"httpGet": {"port": 80, "httpHeaders": [{"name": "a b", "value": "x"}]}}}'
refuse "a header value with a newline" ".httpGet.httpHeaders[0]: value must be a string without control characters" \
    "${P[@]}" --app-probes '{"/app-health/web/liveness": {"httpGet": {"port": 80, "httpHeaders": [{"name": "X", "value": "a\r\nb: c"}]}}}'
refuse "an unknown field" '"/app-health/web/liveness".httpGet.host: unknown field' \
    "${P[@]}" --app-probes '{"/app-health/web/liveness": {"httpGet": {"port": 80, "host": "10.0.0.1"}}}'
refuse "timeoutSeconds 0" '"/app-health/web/liveness".timeoutSeconds: must be a number from 1 to 3600' \
    "${P[@]}" --app-probes '{"/app-health/web/liveness": {"tcpSocket": {"port": 80}, "timeoutSeconds": 0}}'

finish
