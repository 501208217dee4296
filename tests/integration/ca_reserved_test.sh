#!/usr/bin/env bash
# seam-ca never signs its own identity or a --reserved-id, whatever the credential: join token, JWT, renewal.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ca_common.sh"

CA_ID=spiffe://$TD/ns/seam-system/sa/seam-ca
ADMIN_ID=spiffe://$TD/ns/kube-system/sa/admin
OPS_ID=spiffe://$TD/ns/ops/sa/deployer
ISS=https://kubernetes.default.svc.cluster.local

# --- flags --------------------------------------------------------------------------------
"$SEAM_CA" token create --join-tokens "$WORK/t" --spiffe-id "$CA_ID" 2>"$WORK/err"
check "token create for the CA's identity exits 2" 2 $?
check "... with one line" 1 "$(wc -l <"$WORK/err")"
check_contains "... naming it" "$CA_ID: the CA's own identity is reserved" "$(cat "$WORK/err")"
"$SEAM_CA" token create --join-tokens "$WORK/t" --spiffe-id "$ADMIN_ID" --reserved-id "$ADMIN_ID" 2>"$WORK/err"
check "token create for a --reserved-id exits 2" 2 $?
check_contains "... naming the entry" "reserved by --reserved-id $ADMIN_ID" "$(cat "$WORK/err")"
"$SEAM_CA" token create --join-tokens "$WORK/t" --spiffe-id "$OPS_ID" --reserved-id "spiffe://$TD/ns/ops/*" 2>/dev/null
check "token create under a reserved prefix exits 2" 2 $?
if [ -e "$WORK/t" ]; then fail "refused token creates write nothing"; else pass "refused token creates write nothing"; fi
"$SEAM_CA" token create --join-tokens "$WORK/t" --spiffe-id "$WEB_ID" --reserved-id "$ADMIN_ID" >/dev/null
check "token create for another ID still works" 0 $?
"$SEAM_CA" token create --join-tokens "$WORK/t" --spiffe-id "$WEB_ID" --reserved-id "not-an-id" 2>"$WORK/err"
check "token create with a bad --reserved-id exits 2" 2 $?
"$SEAM_CA" --ca-dir x --trust-domain $TD --journal j --reserved-id "spiffe://other.org/ns/a/sa/b" 2>"$WORK/err"
check "--reserved-id in another trust domain exits 2" 2 $?
check_contains "... naming it" "--reserved-id spiffe://other.org/ns/a/sa/b: not in trust domain $TD" "$(cat "$WORK/err")"
"$SEAM_CA" --ca-dir x --trust-domain $TD --journal j --reserved-id "spiffe://$TD/ns/a/" 2>/dev/null
check "--reserved-id that is not an ID exits 2" 2 $?

# --- start ------------------------------------------------------------------------------------
openssl ecparam -name prime256v1 -genkey -noout -out "$WORK/sa-ec.key"
openssl ec -in "$WORK/sa-ec.key" -pubout -out "$WORK/sa-ec.pub" 2>/dev/null
python3 "$CA_JWT_PY" jwks "$WORK/jwks.json" "$WORK/sa-ec.pub:ec-1"
make_ca_dir "$WORK/ca"
CA_BUNDLE=$WORK/ca/bundle.pem
TOKENS=$WORK/join-tokens
JOURNAL=$WORK/journal
start_ca ca --ca-dir "$WORK/ca" --trust-domain $TD --journal "$JOURNAL" --join-tokens "$TOKENS" \
    --jwks "$WORK/jwks.json" --issuer "$ISS" --reserved-id "$ADMIN_ID" --reserved-id "spiffe://$TD/ns/ops/*"

# handmade_token ID: a join token for ID written straight into the file, as one made before the ID was
# reserved (or by an older seam-ca) would be. Prints the token.
handmade_token() {
    python3 - "$TOKENS" "$1" <<'PY'
import fcntl, hashlib, json, os, secrets, sys, time
path, spiffe_id = sys.argv[1], sys.argv[2]
token = "seam-join-" + secrets.token_urlsafe(32)
now = int(time.time())
rec = {"op": "create", "hash": hashlib.sha256(token.encode()).hexdigest(), "spiffe_id": spiffe_id,
       "expires": now + 3600, "created": now}
fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, (json.dumps(rec, separators=(",", ":")) + "\n").encode())
os.fsync(fd)
os.close(fd)
print(token)
PY
}

# mint_jwt SA_NAMESPACE SA_NAME: a valid ES256 projected service-account token.
mint_jwt() {
    local now
    now=$(date +%s)
    python3 "$CA_JWT_PY" mint --sign ec:"$WORK/sa-ec.key" --header '{"alg":"ES256","kid":"ec-1"}' --claims \
        "{\"aud\":[\"seam-ca\"],\"exp\":$((now + 600)),\"iat\":$now,\"iss\":\"$ISS\",\"jti\":\"j-$1-$2\",\"sub\":\"system:serviceaccount:$1:$2\"}"
}

# body_for ID: a sign request body for a fresh key and ID; prints its path.
body_for() {
    local name
    name=$(echo "$1" | tr -c 'a-z0-9' '_')
    make_key "$WORK/$name.key"
    make_csr "$WORK/$name.csr" "$WORK/$name.key" "URI:$1"
    make_body "$WORK/$name.json" "$WORK/$name.csr"
    echo "$WORK/$name.json"
}

records=$(wc -l <"$JOURNAL")
uses=0
# refused NAME ID [curl args...]: 403 reserved-identity, no journal record, no token spent.
refused() {
    local name=$1 id=$2
    shift 2
    expect_refusal "$name" 403 reserved-identity "$(body_for "$id")" "$@"
    check "$name: nothing journaled" "$records" "$(wc -l <"$JOURNAL")"
    check "$name: no token spent" "$uses" "$(grep -c '"op":"use"' "$TOKENS" || true)"
}

refused "join token for the CA's identity" "$CA_ID" -H "Authorization: Bearer $(handmade_token "$CA_ID")"
check_contains "... message says why" "$CA_ID is the CA's own identity" "$(json_field "$WORK/reply.json" message)"
refused "join token for a --reserved-id" "$ADMIN_ID" -H "Authorization: Bearer $(handmade_token "$ADMIN_ID")"
check_contains "... message names the entry" "reserved by --reserved-id $ADMIN_ID" "$(json_field "$WORK/reply.json" message)"
refused "join token under a reserved prefix" "$OPS_ID" -H "Authorization: Bearer $(handmade_token "$OPS_ID")"
refused "service-account token for the CA's identity" "$CA_ID" -H "Authorization: Bearer $(mint_jwt seam-system seam-ca)"
refused "service-account token for a --reserved-id" "$ADMIN_ID" -H "Authorization: Bearer $(mint_jwt kube-system admin)"
# A certificate for a reserved ID made before it was reserved cannot be renewed.
"$SEAM_CERTS" issue --ca-dir "$WORK/ca" --spiffe-id "$ADMIN_ID" --ttl 1h --out "$WORK/admin-old" >/dev/null
refused "renewal of a --reserved-id" "$ADMIN_ID" --cert "$WORK/admin-old.pem" --key "$WORK/admin-old.key"
check_contains "refusals are logged" "sign refused for 127.0.0.1" "$(grep reserved-identity "$WORK/ca.log")"

# Everything else still signs, with every credential.
sign "$(body_for "$WEB_ID")" -H "Authorization: Bearer $("$SEAM_CA" token create --join-tokens "$TOKENS" --spiffe-id "$WEB_ID")"
check "join token for a workload" 200 "$STATUS"
sign "$(body_for "spiffe://$TD/ns/seam-system/sa/other")" -H "Authorization: Bearer $(mint_jwt seam-system other)"
check "service-account token for a neighbour of the CA" 200 "$STATUS"
sign "$(body_for "spiffe://$TD/ns/opsx/sa/a")" -H "Authorization: Bearer $(mint_jwt opsx a)"
check "an ID that only shares a prefix's letters" 200 "$STATUS"
metrics=$(ca_curl "$CA_URL/metrics")
check_contains "metrics count the refusals" 'seam_ca_sign_total{result="reserved-identity",credential="none"} 6' "$metrics"
stopped "at the end" "$CA_PID" "$WORK/ca.log"
finish
