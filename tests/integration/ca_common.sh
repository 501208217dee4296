# Shared helpers for seam-ca integration tests. Source after lib.sh.

SEAM_CA=$(seam_bin control/seam-ca)
SEAM_CERTS=$(seam_bin certs/seam-certs)
CA_JWT_PY="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/ca_jwt.py"
TD=example.org
WEB_ID=spiffe://$TD/ns/default/sa/web
DB_ID=spiffe://$TD/ns/default/sa/db

# make_ca_dir DIR [TD]: a dev root + intermediate, as an operator would make it.
make_ca_dir() {
    "$SEAM_CERTS" init-root --out "$1" --trust-domain "${2:-$TD}" >/dev/null
}

# start_ca NAME ARGS...: starts seam-ca on a free loopback port with ARGS; sets CA_PORT, CA_PID, CA_URL.
start_ca() {
    local name=$1
    shift
    CA_PORT=$(free_port)
    start_bg "$name" "$SEAM_CA" --listen "127.0.0.1:$CA_PORT" --dns-name localhost "$@"
    CA_PID=$LAST_PID
    CA_URL="https://localhost:$CA_PORT"
    wait_port "$CA_PORT" 15 || { cat "$WORK/$name.log" >&2; return 1; }
}

# The CA's certificate names localhost; --resolve keeps every connection on 127.0.0.1.
ca_curl() {
    curl -sS --max-time 20 --resolve "localhost:$CA_PORT:127.0.0.1" --cacert "$CA_BUNDLE" "$@"
}

# make_key FILE: a fresh P-256 key.
make_key() {
    openssl ecparam -name prime256v1 -genkey -noout -out "$1" 2>/dev/null
}

# make_csr OUT KEY SAN [extra openssl req args...]: a CSR whose subjectAltName is SAN ("URI:spiffe://...").
make_csr() {
    local out=$1 key=$2 san=$3
    shift 3
    openssl req -new -key "$key" -subj / -addext "subjectAltName=$san" "$@" -out "$out" 2>/dev/null
}

# make_body OUT CSR [TTL]: the JSON body of a sign request.
make_body() {
    python3 - "$1" "$2" "${3:-}" <<'PY'
import json, sys
body = {"csr": open(sys.argv[2]).read()}
if sys.argv[3]:
    body["ttl_seconds"] = int(sys.argv[3])
json.dump(body, open(sys.argv[1], "w"))
PY
}

# sign BODY [curl args...]: POSTs BODY to /v1/sign; sets STATUS and ERROR (the JSON "error" field), reply in $WORK/reply.json.
sign() {
    local body=$1
    shift
    STATUS=$(ca_curl -o "$WORK/reply.json" -w '%{http_code}' -H 'Content-Type: application/json' \
        --data-binary "@$body" "$@" "$CA_URL/v1/sign" 2>"$WORK/curl.err") || STATUS="curl-failed:$(cat "$WORK/curl.err")"
    ERROR=$(json_field "$WORK/reply.json" error)
}

# json_field FILE FIELD: prints a top-level field of a JSON file ("" if absent or not JSON).
json_field() {
    python3 -c 'import json,sys
try:
    v = json.load(open(sys.argv[1])).get(sys.argv[2], "")
except Exception:
    v = ""
print(v if not isinstance(v, (list, dict)) else json.dumps(v))' "$1" "$2" 2>/dev/null
}

# expect_refusal NAME STATUS CODE BODY [curl args...]
expect_refusal() {
    local name=$1 want_status=$2 want_code=$3 body=$4
    shift 4
    sign "$body" "$@"
    check "$name: status" "$want_status" "$STATUS"
    check "$name: error" "$want_code" "$ERROR"
}

# save_chain REPLY PREFIX: writes PREFIX.chain.pem (leaf + intermediate) and PREFIX.leaf.pem from a 200 reply.
save_chain() {
    python3 - "$1" "$2" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
open(sys.argv[2] + ".chain.pem", "w").write("".join(d["chain"]))
open(sys.argv[2] + ".leaf.pem", "w").write(d["chain"][0])
PY
}

# lifetime PEM: notAfter - notBefore in seconds.
lifetime() {
    local nb na
    nb=$(date -d "$(openssl x509 -in "$1" -noout -startdate | cut -d= -f2)" +%s)
    na=$(date -d "$(openssl x509 -in "$1" -noout -enddate | cut -d= -f2)" +%s)
    echo $((na - nb))
}

# check_issued NAME PREFIX ID TTL: the chain verifies with openssl and seam-certs, carries ID, lives TTL (+60 s backdating).
check_issued() {
    local name=$1 prefix=$2 id=$3 ttl=$4
    check "$name: openssl verify" "$prefix.leaf.pem: OK" \
        "$(openssl verify -CAfile "$CA_BUNDLE" -untrusted "$prefix.chain.pem" "$prefix.leaf.pem" 2>&1)"
    check "$name: seam-certs verify" "ok: $id" \
        "$("$SEAM_CERTS" verify --bundle "$CA_BUNDLE" "$prefix.chain.pem" --spiffe-id "$id" 2>&1)"
    check "$name: URI SAN" "URI:$id" \
        "$(openssl x509 -in "$prefix.leaf.pem" -noout -ext subjectAltName | tail -n 1 | tr -d ' ')"
    check "$name: lifetime" "$((ttl + 60))" "$(lifetime "$prefix.leaf.pem")"
}
