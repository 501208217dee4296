#!/usr/bin/env bash
# tools/seam-inject: output that validates like the manifests, idempotence,
# and a clear one-line refusal for every kind of input it cannot understand.
set -u
source "$(dirname "$0")/lib.sh"
inject=$top/tools/seam-inject

cat >"$work/app.yaml" <<'YAML'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: nginx:1.27
          ports:
            - containerPort: 8080
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
    - port: 80
YAML
flags=(--policy-configmap web-seam-policy --routes-configmap web-seam-routes)

if "$inject" "${flags[@]}" <"$work/app.yaml" >"$work/once.yaml" 2>"$work/err"; then ok "inject a Deployment"; else bad "inject a Deployment" "$(cat "$work/err")"; fi
"$inject" "${flags[@]}" <"$work/once.yaml" >"$work/twice.yaml" 2>/dev/null
cmp -s "$work/once.yaml" "$work/twice.yaml" && ok "inject is idempotent" || bad "inject is idempotent"
[ "$(grep -c 'name: seam-sidecar' "$work/once.yaml")" = 1 ] && ok "one sidecar added" || bad "one sidecar added"
grep -q -- '--app=127.0.0.1:8080' "$work/once.yaml" && ok "app port taken from containerPort" || bad "app port taken from containerPort"
grep -q 'audience: seam-ca' "$work/once.yaml" && ok "projected token for seam-ca" || bad "projected token for seam-ca"
grep -q 'kind: Service' "$work/once.yaml" && ok "other objects pass through" || bad "other objects pass through"
"$inject" "${flags[@]}" --transparent <"$work/app.yaml" >"$work/transparent.yaml"
grep -q 'NET_ADMIN' "$work/transparent.yaml" && grep -q -- '--transparent' "$work/transparent.yaml" &&
    ok "--transparent adds the interception init container" || bad "--transparent adds the interception init container"
python3 -c 'import json,sys,yaml; json.dump(list(yaml.safe_load_all(open(sys.argv[1])))[0], open(sys.argv[2],"w"))' \
    "$work/app.yaml" "$work/app.json"
"$inject" "${flags[@]}" <"$work/app.json" >"$work/once.json" && python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$work/once.json" &&
    ok "JSON in, JSON out" || bad "JSON in, JSON out"

# seam.io/ annotations on the pod template: options of the interception init container
python3 - "$work/app.yaml" "$work/annotated.yaml" <<'PY'
import sys, yaml
docs = list(yaml.safe_load_all(open(sys.argv[1])))
docs[0]["spec"]["template"]["metadata"]["annotations"] = {
    "seam.io/exclude-inbound-ports": "9090",
    "seam.io/exclude-outbound-ports": "5432, 6379",
    "seam.io/exclude-outbound-cidrs": "169.254.169.254/32",
    "seam.io/include-outbound-cidrs": "10.0.0.0/8,192.168.0.0/16",
}
yaml.safe_dump_all(docs, open(sys.argv[2], "w"), sort_keys=False)
PY
"$inject" "${flags[@]}" --transparent <"$work/annotated.yaml" >"$work/annotated-once.yaml" 2>"$work/err" ||
    bad "inject an annotated Deployment" "$(cat "$work/err")"
init_args=$(python3 -c 'import sys,yaml; d=list(yaml.safe_load_all(open(sys.argv[1])))[0]; print(" ".join(next(c for c in d["spec"]["template"]["spec"]["initContainers"] if c["name"]=="seam-init")["args"]))' "$work/annotated-once.yaml")
for want in --exclude-inbound-ports=9090 --exclude-outbound-ports=5432,6379 --exclude-outbound-cidrs=169.254.169.254/32 \
    --include-outbound-cidrs=10.0.0.0/8,192.168.0.0/16; do
    case " $init_args " in *" $want "*) ok "annotation becomes seam-iptables $want" ;; *) bad "annotation becomes seam-iptables $want" "$init_args" ;; esac
done
"$inject" "${flags[@]}" --transparent <"$work/annotated-once.yaml" >"$work/annotated-twice.yaml" 2>/dev/null
cmp -s "$work/annotated-once.yaml" "$work/annotated-twice.yaml" && ok "annotated inject is idempotent" || bad "annotated inject is idempotent"

# probes: httpGet/tcpSocket of the app become httpGet /app-health/... on the sidecar's probe port
cat >"$work/probes.yaml" <<'YAML'
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: nginx:1.27
          ports:
            - {name: http, containerPort: 8080}
          readinessProbe:
            httpGet:
              path: /healthz
              port: http
              httpHeaders:
                - {name: X-Probe, value: kubelet}
            periodSeconds: 7
            timeoutSeconds: 3
            failureThreshold: 4
          livenessProbe:
            tcpSocket: {port: 8080}
            initialDelaySeconds: 5
          startupProbe:
            exec:
              command: [cat, /tmp/started]
        - name: admin
          image: nginx:1.27
          readinessProbe:
            httpGet: {path: /, port: 9443, scheme: HTTPS}
YAML
"$inject" "${flags[@]}" --transparent <"$work/probes.yaml" >"$work/probes-once.yaml" 2>"$work/probes.err" ||
    bad "inject a Deployment with probes" "$(cat "$work/probes.err")"
"$inject" "${flags[@]}" --transparent <"$work/probes-once.yaml" >"$work/probes-twice.yaml" 2>/dev/null
cmp -s "$work/probes-once.yaml" "$work/probes-twice.yaml" && ok "probe rewrite is idempotent" || bad "probe rewrite is idempotent"
grep -q "warning: .*container admin readinessProbe: a probe with a host or the HTTPS scheme stays as it is" "$work/probes.err" &&
    ok "an HTTPS probe is left as it is, with a warning" || bad "an HTTPS probe is left as it is, with a warning" "$(cat "$work/probes.err")"
if python3 - "$work/probes-once.yaml" >"$work/probes.check" 2>&1 <<'PY'
import json, sys, yaml
d = list(yaml.safe_load_all(open(sys.argv[1])))[0]["spec"]["template"]["spec"]
web, admin = d["containers"]
sidecar = next(c for c in d["initContainers"] if c["name"] == "seam-sidecar")
args = {a.split("=", 1)[0]: a.split("=", 1)[1] for a in sidecar["args"] if "=" in a}
table = json.loads(args["--app-probes"])
checks = [
    ("readiness becomes httpGet on the probe port", web["readinessProbe"]["httpGet"] == {"path": "/app-health/web/readiness", "port": 15020, "scheme": "HTTP"}),
    ("readiness keeps its timing fields", (web["readinessProbe"]["periodSeconds"], web["readinessProbe"]["timeoutSeconds"], web["readinessProbe"]["failureThreshold"]) == (7, 3, 4)),
    ("tcpSocket liveness becomes httpGet", "tcpSocket" not in web["livenessProbe"] and web["livenessProbe"]["httpGet"]["path"] == "/app-health/web/liveness"),
    ("liveness keeps initialDelaySeconds", web["livenessProbe"]["initialDelaySeconds"] == 5),
    ("an exec probe stays as it is", web["startupProbe"] == {"exec": {"command": ["cat", "/tmp/started"]}}),
    ("an HTTPS probe stays as it is", admin["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"),
    ("the sidecar listens for probes on the pod IP", args.get("--probe-listen") == "0.0.0.0:15020"),
    ("the sidecar declares the probe port", {"name": "probe", "containerPort": 15020, "protocol": "TCP"} in sidecar["ports"]),
    ("the original httpGet goes to the sidecar, named port resolved",
     table["/app-health/web/readiness"] == {"httpGet": {"port": 8080, "path": "/healthz", "scheme": "HTTP", "httpHeaders": [{"name": "X-Probe", "value": "kubelet"}]}, "timeoutSeconds": 3}),
    ("the original tcpSocket goes to the sidecar", table["/app-health/web/liveness"] == {"tcpSocket": {"port": 8080}, "timeoutSeconds": 1}),
    ("only rewritten probes are in the table", sorted(table) == ["/app-health/web/liveness", "/app-health/web/readiness"]),
]
for name, good in checks:
    print(("ok - " if good else "not ok - ") + name)
PY
then :; fi
while IFS= read -r line; do
    case "$line" in "ok - "*) ok "${line#ok - }" ;; "not ok - "*) bad "${line#not ok - }" ;; *) bad "probe checks ran" "$line" ;; esac
done <"$work/probes.check"
"$inject" "${flags[@]}" <"$work/probes.yaml" >"$work/probes-plain.yaml" 2>/dev/null
grep -q "app-health" "$work/probes-plain.yaml" && bad "without --transparent probes stay as they are" ||
    ok "without --transparent probes stay as they are"

for f in once.yaml transparent.yaml annotated-once.yaml probes-once.yaml; do
    if node "$here/validate.js" "$work/$f" >"$work/v.log"; then ok "validate.js accepts injected $f"; else bad "validate.js accepts injected $f" "$(grep 'not ok' "$work/v.log")"; fi
    if python3 "$here/roundtrip.py" "$work/$f" >"$work/r.log"; then ok "kubectl round trip of injected $f"; else bad "kubectl round trip of injected $f" "$(grep 'not ok' "$work/r.log")"; fi
done

# refusals: exit 1 and one line naming what is wrong
refuse() {
    local name=$1 want=$2 input=$3
    shift 3
    printf '%s' "$input" | "$inject" "$@" >/dev/null 2>"$work/err"
    local rc=$?
    local lines
    lines=$(grep -c . "$work/err")
    if [ "$rc" -ne 0 ] && [ "$lines" = 1 ] && grep -q -- "$want" "$work/err"; then ok "refuses $name"; else bad "refuses $name" "rc=$rc $(cat "$work/err")"; fi
}
refuse "unparseable YAML" "cannot parse YAML" ': : :' "${flags[@]}"
refuse "unparseable JSON" "cannot parse JSON" '{"kind": ' "${flags[@]}"
refuse "empty input" "no Kubernetes object" '' "${flags[@]}"
refuse "a scalar" "not a Kubernetes object" 'hello' "${flags[@]}"
refuse "no kind" "missing apiVersion or kind" 'metadata: {name: x}' "${flags[@]}"
refuse "a Deployment without containers" "no containers to mesh" \
    '{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"a"},"spec":{"template":{"spec":{}}}}' "${flags[@]}"
refuse "a Deployment without a template" "spec.template.spec is missing" \
    '{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"a"},"spec":{}}' "${flags[@]}"
refuse "no app port" "no containerPort" \
    '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"},"spec":{"containers":[{"name":"a","image":"x"}]}}' "${flags[@]}"
refuse "a volume name clash" "already used" \
    '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"},"spec":{"volumes":[{"name":"seam-token","emptyDir":{}}],"containers":[{"name":"a","image":"x","ports":[{"containerPort":80}]}]}}' "${flags[@]}"
annotated() { # annotated NAME VALUE: a transparent-ready Pod carrying one seam.io/ annotation
    printf '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","annotations":{"%s":"%s"}},"spec":{"containers":[{"name":"a","image":"x","ports":[{"containerPort":80}]}]}}' "$1" "$2"
}
T=("${flags[@]}" --transparent)
refuse "a port annotation with a name" "seam.io/exclude-outbound-ports: 'http' is not a port" \
    "$(annotated seam.io/exclude-outbound-ports 80,http)" "${T[@]}"
refuse "a port annotation above 65535" "seam.io/exclude-inbound-ports: '65536' is not a port" \
    "$(annotated seam.io/exclude-inbound-ports 65536)" "${T[@]}"
refuse "a port annotation with an empty item" "has an empty item" "$(annotated seam.io/exclude-inbound-ports 80,,81)" "${T[@]}"
refuse "an empty annotation" "seam.io/exclude-outbound-cidrs: want a comma-separated list" \
    "$(annotated seam.io/exclude-outbound-cidrs '')" "${T[@]}"
refuse "a CIDR annotation that is not one" "seam.io/include-outbound-cidrs: '10.0.0.0/33' is not an IPv4 address" \
    "$(annotated seam.io/include-outbound-cidrs 10.0.0.0/33)" "${T[@]}"
refuse "an IPv6 CIDR annotation" "'fd00::/8' is not an IPv4 address" "$(annotated seam.io/exclude-outbound-cidrs fd00::/8)" "${T[@]}"
refuse "an interception annotation without --transparent" "seam.io/exclude-outbound-ports tunes the interception rules: it needs --transparent" \
    "$(annotated seam.io/exclude-outbound-ports 5432)" "${flags[@]}"
probe_pod() { # probe_pod PROBE_JSON: a Pod whose container has that readinessProbe
    printf '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"},"spec":{"containers":[{"name":"a","image":"x","ports":[{"containerPort":80}],"readinessProbe":%s}]}}' "$1"
}
refuse "a probe on a port name the container lacks" "container a readinessProbe.httpGet: port 'nope' is neither 1..65535 nor the name" \
    "$(probe_pod '{"httpGet":{"port":"nope"}}')" "${T[@]}"
refuse "a probe on port 0" "readinessProbe.tcpSocket: port 0 is neither" "$(probe_pod '{"tcpSocket":{"port":0}}')" "${T[@]}"
refuse "a probe with timeoutSeconds 0" "readinessProbe: timeoutSeconds must be a number from 1 to 3600" \
    "$(probe_pod '{"tcpSocket":{"port":80},"timeoutSeconds":0}')" "${T[@]}"
"$inject" </dev/null >/dev/null 2>&1
[ $? -eq 2 ] && ok "no listener chosen is a usage error" || bad "no listener chosen is a usage error"
"$inject" --policy-configmap p --transparent </dev/null >/dev/null 2>"$work/err"
[ $? -eq 2 ] && grep -q "needs --routes-configmap" "$work/err" && ok "--transparent without routes is a usage error" ||
    bad "--transparent without routes is a usage error" "$(cat "$work/err")"

summary inject
