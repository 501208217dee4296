#!/usr/bin/env bash
# seam-ca with Kubernetes service-account tokens: RS256 and ES256 happy paths and every refusal.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ca_common.sh"

ISS=https://kubernetes.default.svc.cluster.local
NOW=$(date +%s)

openssl genrsa -out "$WORK/sa-rsa.key" 2048 2>/dev/null
openssl rsa -in "$WORK/sa-rsa.key" -pubout -out "$WORK/sa-rsa.pub" 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out "$WORK/sa-ec.key"
openssl ec -in "$WORK/sa-ec.key" -pubout -out "$WORK/sa-ec.pub" 2>/dev/null
openssl genrsa -out "$WORK/other.key" 2048 2>/dev/null
python3 "$CA_JWT_PY" jwks "$WORK/jwks.json" "$WORK/sa-rsa.pub:rsa-1" "$WORK/sa-ec.pub:ec-1"

make_ca_dir "$WORK/ca"
CA_BUNDLE=$WORK/ca/bundle.pem
start_ca ca --ca-dir "$WORK/ca" --trust-domain $TD --journal "$WORK/journal" --jwks "$WORK/jwks.json" --issuer "$ISS"

# claims [key=value...]: a projected service-account token's claims with overrides.
claims() {
    python3 - "$NOW" "$ISS" "$@" <<'PY'
import json, sys
now, iss = int(sys.argv[1]), sys.argv[2]
c = {"aud": ["seam-ca"], "exp": now + 600, "iat": now, "nbf": now, "iss": iss,
     "jti": "5b2c1e0e-aaaa-bbbb-cccc-0123456789ab",
     "kubernetes.io": {"namespace": "default", "pod": {"name": "web-0", "uid": "u1"},
                       "serviceaccount": {"name": "web", "uid": "u2"}},
     "sub": "system:serviceaccount:default:web"}
for kv in sys.argv[3:]:
    k, v = kv.split("=", 1)
    c[k] = int(v) if v.lstrip("-").isdigit() else (json.loads(v) if v.startswith("[") else v)
print(json.dumps(c))
PY
}

# mint SIGNER HEADER [claim overrides...]
mint() {
    local signer=$1 header=$2
    shift 2
    python3 "$CA_JWT_PY" mint --sign "$signer" --header "$header" --claims "$(claims "$@")"
}

make_key "$WORK/web.key"
make_csr "$WORK/web.csr" "$WORK/web.key" "URI:$WEB_ID"
make_body "$WORK/web.json" "$WORK/web.csr"

RS='{"alg":"RS256","kid":"rsa-1"}'
ES='{"alg":"ES256","kid":"ec-1"}'

# --- happy paths ----------------------------------------------------------------------
sign "$WORK/web.json" -H "Authorization: Bearer $(mint rsa:"$WORK/sa-rsa.key" "$RS")"
check "RS256 token: status" 200 "$STATUS"
save_chain "$WORK/reply.json" "$WORK/rs"
check_issued "RS256 token" "$WORK/rs" "$WEB_ID" 3600
check_contains "journal names the jti" '"credential":"jwt","ref":"jti:5b2c1e0e-aaaa-bbbb-cccc-0123456789ab"' "$(cat "$WORK/journal")"

sign "$WORK/web.json" -H "Authorization: Bearer $(mint ec:"$WORK/sa-ec.key" "$ES")"
check "ES256 token: status" 200 "$STATUS"
save_chain "$WORK/reply.json" "$WORK/es"
check_issued "ES256 token" "$WORK/es" "$WEB_ID" 3600

# --- refusals ------------------------------------------------------------------------------
refuse() {
    local name=$1 status=$2 code=$3 token=$4
    expect_refusal "$name" "$status" "$code" "$WORK/web.json" -H "Authorization: Bearer $token"
}
refuse "alg none" 401 unsupported-alg "$(mint none '{"alg":"none","kid":"rsa-1"}')"
refuse "HS256 keyed with the RSA public key text" 401 unsupported-alg \
    "$(mint hmac:"$WORK/sa-rsa.pub" '{"alg":"HS256","kid":"rsa-1","typ":"JWT"}')"
refuse "ES256 header on the RSA key" 401 alg-mismatch "$(mint ec:"$WORK/sa-ec.key" '{"alg":"ES256","kid":"rsa-1"}')"
refuse "unknown kid" 401 unknown-kid "$(mint rsa:"$WORK/sa-rsa.key" '{"alg":"RS256","kid":"rotated-away"}')"
refuse "signature by another key" 401 bad-token-signature "$(mint rsa:"$WORK/other.key" "$RS")"
refuse "expired" 401 token-expired "$(mint rsa:"$WORK/sa-rsa.key" "$RS" exp=$((NOW - 3600)) iat=$((NOW - 7200)) nbf=$((NOW - 7200)))"
refuse "nbf in the future" 401 token-not-yet-valid "$(mint rsa:"$WORK/sa-rsa.key" "$RS" nbf=$((NOW + 600)) exp=$((NOW + 1200)))"
refuse "iat in the future" 401 token-iat-future "$(mint rsa:"$WORK/sa-rsa.key" "$RS" iat=$((NOW + 600)))"
refuse "wrong aud" 401 wrong-audience "$(mint rsa:"$WORK/sa-rsa.key" "$RS" 'aud=["https://kubernetes.default.svc"]')"
refuse "wrong iss" 401 wrong-issuer "$(mint ec:"$WORK/sa-ec.key" "$ES" iss=https://evil.example)"
refuse "sub of another service account" 403 identity-mismatch \
    "$(mint rsa:"$WORK/sa-rsa.key" "$RS" sub=system:serviceaccount:default:db)"
refuse "sub not a service account" 401 bad-subject "$(mint rsa:"$WORK/sa-rsa.key" "$RS" sub=system:node:worker-1)"

good=$(mint rsa:"$WORK/sa-rsa.key" "$RS")
refuse "malformed JWT: 2 parts" 401 malformed-token "${good%.*}"
IFS=. read -r h p s <<<"$good"
refuse "malformed JWT: bad base64" 401 malformed-token "$h.${p:0:10}*${p:11}.$s"
notjson=$(printf 'not json at all' | base64 -w0 | tr '+/' '-_' | tr -d '=')
refuse "malformed JWT: non-JSON payload" 401 malformed-token "$h.$notjson.$s"
refuse "malformed JWT: non-JSON header" 401 malformed-token "$notjson.$p.$s"
refuse "join token when none are configured" 401 join-tokens-disabled "seam-join-AAAA"

metrics=$(ca_curl "$CA_URL/metrics")
check_contains "metrics: jwt successes" 'seam_ca_sign_total{result="ok",credential="jwt"} 2' "$metrics"
refuse "iss with a newline" 401 wrong-issuer "$(mint rsa:"$WORK/sa-rsa.key" "$RS" $'iss=https://evil\nINJECTED')"
check "claims cannot inject log lines" 0 "$(grep -c '^INJECTED' "$WORK/ca.log")"
check_contains "metrics: jwt refusals by code" 'seam_ca_sign_total{result="unsupported-alg",credential="jwt"} 2' "$metrics"

# SIGHUP re-reads the JWKS: a rotated-in key works, a rotated-out one is unknown, a broken file keeps the keys.
wait_log() {
    local needle=$1 i
    for ((i = 0; i < 50; i++)); do
        grep -q -- "$needle" "$WORK/ca.log" && return 0
        sleep 0.1
    done
    return 1
}
openssl ecparam -name prime256v1 -genkey -noout -out "$WORK/sa-new.key"
openssl ec -in "$WORK/sa-new.key" -pubout -out "$WORK/sa-new.pub" 2>/dev/null
python3 "$CA_JWT_PY" jwks "$WORK/jwks.json" "$WORK/sa-new.pub:ec-2"
kill -HUP "$CA_PID"
wait_log "reloaded 1 key(s)"
check "SIGHUP reload logged" 0 $?
sign "$WORK/web.json" -H "Authorization: Bearer $(mint ec:"$WORK/sa-new.key" '{"alg":"ES256","kid":"ec-2"}')"
check "rotated-in key accepted" 200 "$STATUS"
refuse "rotated-out key" 401 unknown-kid "$(mint rsa:"$WORK/sa-rsa.key" "$RS")"
echo '{"keys": "broken"}' >"$WORK/jwks.json"
kill -HUP "$CA_PID"
wait_log "keeping the previous keys"
check "broken JWKS on SIGHUP refused" 0 $?
sign "$WORK/web.json" -H "Authorization: Bearer $(mint ec:"$WORK/sa-new.key" '{"alg":"ES256","kid":"ec-2"}')"
check "keys kept after a broken reload" 200 "$STATUS"

stopped "SIGTERM" "$CA_PID" "$WORK/ca.log"
finish
