#!/usr/bin/env bash
# seam-ca end to end with join tokens: happy path, CSR and body refusals, bundle, healthz, metrics, CLI.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ca_common.sh"

# --- CLI contract -----------------------------------------------------------------
"$SEAM_CA" --help >"$WORK/help.txt"
check "--help exits 0" 0 $?
check_contains "--help names --journal" "--journal FILE" "$(cat "$WORK/help.txt")"
check "--version" "seam-ca 0.1.0" "$("$SEAM_CA" --version)"
"$SEAM_CA" --trust-domain $TD --journal "$WORK/j" 2>"$WORK/usage.err"
check "missing --ca-dir exits 2" 2 $?
check_contains "missing --ca-dir is named" "--ca-dir is required" "$(cat "$WORK/usage.err")"
"$SEAM_CA" --bogus 2>/dev/null
check "unknown flag exits 2" 2 $?
"$SEAM_CA" --ca-dir x --trust-domain $TD --journal j --ttl 5parsecs 2>"$WORK/usage.err"
check "bad --ttl exits 2" 2 $?
check "bad --ttl is one line" 1 "$(wc -l <"$WORK/usage.err")"
"$SEAM_CA" --ca-dir x --trust-domain $TD --journal j --max-ttl 48h 2>/dev/null
check "--max-ttl over 24h exits 2" 2 $?
"$SEAM_CA" --ca-dir "$WORK/nope" --trust-domain $TD --journal "$WORK/j" --listen 127.0.0.1:1 2>"$WORK/run.err"
check "missing CA dir exits 1" 1 $?
check_contains "missing CA dir names the file" "$WORK/nope/intermediate.pem" "$(cat "$WORK/run.err")"
"$SEAM_CA" token create --join-tokens "$WORK/t" --spiffe-id not-an-id 2>/dev/null
check "token create with a bad ID exits 2" 2 $?

# --- start ------------------------------------------------------------------------------
make_ca_dir "$WORK/ca"
CA_BUNDLE=$WORK/ca/bundle.pem
TOKENS=$WORK/join-tokens
JOURNAL=$WORK/journal
start_ca ca --ca-dir "$WORK/ca" --trust-domain $TD --journal "$JOURNAL" --join-tokens "$TOKENS" --ttl 30m

check "healthz" '{"status":"ok"}' "$(ca_curl "$CA_URL/healthz")"
ca_curl "$CA_URL/v1/bundle" >"$WORK/bundle.json"
check "bundle trust domain" "$TD" "$(json_field "$WORK/bundle.json" trust_domain)"
python3 -c 'import json,sys; open(sys.argv[2],"w").write(json.load(open(sys.argv[1]))["roots"][0])' \
    "$WORK/bundle.json" "$WORK/bundle-root.pem"
check "bundle holds the root" "$(openssl x509 -in "$WORK/ca/root.pem" -noout -fingerprint)" \
    "$(openssl x509 -in "$WORK/bundle-root.pem" -noout -fingerprint)"
serving=$(openssl s_client -connect 127.0.0.1:$CA_PORT -servername localhost -CAfile "$CA_BUNDLE" </dev/null 2>/dev/null |
    openssl x509 -noout -ext subjectAltName 2>/dev/null | tail -n 1 | tr -d ' ')
check "serving certificate identity" "URI:spiffe://$TD/ns/seam-system/sa/seam-ca,DNS:localhost" "$serving"
check_contains "TLS 1.1 refused" "Cipher is (NONE)" "$(openssl s_client -connect 127.0.0.1:$CA_PORT -tls1_1 </dev/null 2>&1)"
check_contains "TLS 1.2 accepted" "Protocol  : TLSv1.2" \
    "$(openssl s_client -connect 127.0.0.1:$CA_PORT -tls1_2 -CAfile "$CA_BUNDLE" </dev/null 2>&1)"

# --- happy path: join token ------------------------------------------------------------
TOKEN=$("$SEAM_CA" token create --join-tokens "$TOKENS" --spiffe-id "$WEB_ID" --ttl 10m)
check "token create exit" 0 $?
check_contains "token has its prefix" "seam-join-" "$TOKEN"
if grep -q "${TOKEN#seam-join-}" "$TOKENS"; then fail "tokens file holds only hashes"; else pass "tokens file holds only hashes"; fi
check "tokens file mode" 600 "$(stat -c %a "$TOKENS")"

make_key "$WORK/web.key"
make_csr "$WORK/web.csr" "$WORK/web.key" "URI:$WEB_ID"
make_body "$WORK/web.json" "$WORK/web.csr"
sign "$WORK/web.json" -H "Authorization: Bearer $TOKEN"
check "join token sign: status" 200 "$STATUS"
check "join token sign: spiffe_id" "$WEB_ID" "$(json_field "$WORK/reply.json" spiffe_id)"
cp "$WORK/reply.json" "$WORK/first.json"
save_chain "$WORK/reply.json" "$WORK/web"
check_issued "join token sign" "$WORK/web" "$WEB_ID" 1800
serial=$(json_field "$WORK/first.json" serial)
check "reply serial is the certificate's" "$(openssl x509 -in "$WORK/web.leaf.pem" -noout -serial | cut -d= -f2 | tr A-F a-f)" \
    "$(echo "$serial" | sed 's/^0*//')"
check_contains "journal records the issuance" "\"serial\":\"$serial\"" "$(cat "$JOURNAL")"
check_contains "journal names the credential" '"credential":"join_token","ref":"sha256:' "$(grep "$serial" "$JOURNAL")"

expect_refusal "join token reused" 401 join-token-used "$WORK/web.json" -H "Authorization: Bearer $TOKEN"
expect_refusal "join token unknown" 401 join-token-unknown "$WORK/web.json" \
    -H "Authorization: Bearer seam-join-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

# A token is bound to its identity, and a refusal for that reason does not spend it.
DB_TOKEN=$("$SEAM_CA" token create --join-tokens "$TOKENS" --spiffe-id "$DB_ID")
expect_refusal "join token for another identity" 403 identity-mismatch "$WORK/web.json" -H "Authorization: Bearer $DB_TOKEN"
make_key "$WORK/db.key"
make_csr "$WORK/db.csr" "$WORK/db.key" "URI:$DB_ID"
make_body "$WORK/db.json" "$WORK/db.csr" 600
sign "$WORK/db.json" -H "Authorization: Bearer $DB_TOKEN"
check "requested ttl: status" 200 "$STATUS"
save_chain "$WORK/reply.json" "$WORK/db"
check_issued "requested ttl" "$WORK/db" "$DB_ID" 600

make_body "$WORK/long.json" "$WORK/web.csr" 999999
T=$("$SEAM_CA" token create --join-tokens "$TOKENS" --spiffe-id "$WEB_ID")
sign "$WORK/long.json" -H "Authorization: Bearer $T"
check "ttl clamped to --max-ttl: status" 200 "$STATUS"
save_chain "$WORK/reply.json" "$WORK/long"
check "ttl clamped to --max-ttl (24h)" $((86400 + 60)) "$(lifetime "$WORK/long.leaf.pem")"

# --- CSR refusals (each with a valid, unspent token) -------------------------------------
csr_refusal() {
    local name=$1 status=$2 code=$3 csr=$4 tok
    tok=$("$SEAM_CA" token create --join-tokens "$TOKENS" --spiffe-id "$WEB_ID")
    make_body "$WORK/bad.json" "$csr"
    expect_refusal "$name" "$status" "$code" "$WORK/bad.json" -H "Authorization: Bearer $tok"
}
make_csr "$WORK/two-uris.csr" "$WORK/web.key" "URI:$WEB_ID,URI:$DB_ID"
csr_refusal "CSR with two URI SANs" 400 csr-sans "$WORK/two-uris.csr"
make_csr "$WORK/dns.csr" "$WORK/web.key" "URI:$WEB_ID,DNS:web.default.svc"
csr_refusal "CSR with a DNS SAN" 400 csr-sans "$WORK/dns.csr"
openssl genrsa -out "$WORK/rsa.key" 2048 2>/dev/null
make_csr "$WORK/rsa.csr" "$WORK/rsa.key" "URI:$WEB_ID"
csr_refusal "CSR with an RSA key" 400 csr-key-type "$WORK/rsa.csr"
make_csr "$WORK/other-td.csr" "$WORK/web.key" "URI:spiffe://other.example/ns/default/sa/web"
csr_refusal "CSR for another trust domain" 403 out-of-trust-domain "$WORK/other-td.csr"
# Flip one bit of the signature (the last bytes of the DER) and re-encode.
openssl req -in "$WORK/web.csr" -outform DER -out "$WORK/web.csr.der"
python3 -c 'import sys; b=bytearray(open(sys.argv[1],"rb").read()); b[-5]^=1; open(sys.argv[1],"wb").write(b)' "$WORK/web.csr.der"
{
    echo "-----BEGIN CERTIFICATE REQUEST-----"
    base64 -w 64 "$WORK/web.csr.der"
    echo "-----END CERTIFICATE REQUEST-----"
} >"$WORK/badsig.csr"
csr_refusal "CSR with a bad signature" 400 csr-bad-signature "$WORK/badsig.csr"
echo "not a csr" >"$WORK/garbage.csr"
csr_refusal "CSR that is not PEM" 400 bad-csr "$WORK/garbage.csr"

# --- body and credential refusals ---------------------------------------------------------
echo 'this is not json' >"$WORK/notjson.json"
expect_refusal "non-JSON body" 400 bad-json "$WORK/notjson.json" -H "Authorization: Bearer $TOKEN"
echo '{"ttl_seconds": 60}' >"$WORK/nocsr.json"
expect_refusal "body without csr" 400 missing-csr "$WORK/nocsr.json"
python3 -c 'import json,sys; json.dump({"csr": "x" * (70 * 1024)}, open(sys.argv[1], "w"))' "$WORK/big.json"
expect_refusal "oversize body" 413 body-too-large "$WORK/big.json"
expect_refusal "no credential" 401 missing-credential "$WORK/web.json"
expect_refusal "not a Bearer header" 401 bad-authorization "$WORK/web.json" -H "Authorization: Basic dXNlcjpwYXNz"
expect_refusal "JWT when no --jwks" 401 jwt-disabled "$WORK/web.json" -H "Authorization: Bearer a.b.c"

check "GET /v1/sign" 405 "$(ca_curl -o /dev/null -w '%{http_code}' "$CA_URL/v1/sign")"
check "unknown path" 404 "$(ca_curl -o /dev/null -w '%{http_code}' "$CA_URL/v2/nothing")"
check "HTTP/2 works" 200 "$(ca_curl --http2 -o /dev/null -w '%{http_code}' "$CA_URL/healthz")"

# --- metrics -----------------------------------------------------------------------------
metrics=$(ca_curl "$CA_URL/metrics")
check_contains "metrics: successes" 'seam_ca_sign_total{result="ok",credential="join_token"} 3' "$metrics"
check_contains "metrics: reuse counted" 'seam_ca_sign_total{result="join-token-used",credential="join_token"} 1' "$metrics"
check_contains "metrics: intermediate expiry" "seam_ca_intermediate_expiry_timestamp_seconds $(date -d \
    "$(openssl x509 -in "$WORK/ca/intermediate.pem" -noout -enddate | cut -d= -f2)" +%s)" "$metrics"
check_contains "metrics: root expiry" "seam_ca_root_expiry_timestamp_seconds $(date -d \
    "$(openssl x509 -in "$WORK/ca/root.pem" -noout -enddate | cut -d= -f2)" +%s)" "$metrics"

# --- logs never hold secrets; clean stop ----------------------------------------------------
if grep -q -- "${TOKEN#seam-join-}" "$WORK/ca.log"; then fail "log holds no token"; else pass "log holds no token"; fi
if grep -q "PRIVATE KEY" "$WORK/ca.log" "$JOURNAL"; then fail "no key in log or journal"; else pass "no key in log or journal"; fi
stopped "SIGTERM" "$CA_PID" "$WORK/ca.log"

finish
