#!/usr/bin/env bash
# seam-ca renewal: a valid client certificate on the connection is the credential.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ca_common.sh"
SEAM_TESTCERT=$(seam_bin tests/tools/seam-testcert)

make_ca_dir "$WORK/ca"
make_ca_dir "$WORK/other-ca" # same trust domain, different root
CA_BUNDLE=$WORK/ca/bundle.pem
TOKENS=$WORK/join-tokens
start_ca ca --ca-dir "$WORK/ca" --trust-domain $TD --journal "$WORK/journal" --join-tokens "$TOKENS"

# First certificate with a join token.
make_key "$WORK/web.key"
make_csr "$WORK/web.csr" "$WORK/web.key" "URI:$WEB_ID"
make_body "$WORK/web.json" "$WORK/web.csr" 900
sign "$WORK/web.json" -H "Authorization: Bearer $("$SEAM_CA" token create --join-tokens "$TOKENS" --spiffe-id "$WEB_ID")"
check "first certificate" 200 "$STATUS"
save_chain "$WORK/reply.json" "$WORK/web"
first_serial=$(json_field "$WORK/reply.json" serial)

# Renewal: new key, new CSR, the current certificate as the TLS client certificate.
make_key "$WORK/web2.key"
make_csr "$WORK/web2.csr" "$WORK/web2.key" "URI:$WEB_ID"
make_body "$WORK/web2.json" "$WORK/web2.csr" 900
sign "$WORK/web2.json" --cert "$WORK/web.chain.pem" --key "$WORK/web.key"
check "renewal: status" 200 "$STATUS"
save_chain "$WORK/reply.json" "$WORK/renewed"
check_issued "renewal" "$WORK/renewed" "$WEB_ID" 900
check "renewed certificate holds the new key" \
    "$(openssl pkey -in "$WORK/web2.key" -pubout 2>/dev/null)" "$(openssl x509 -in "$WORK/renewed.leaf.pem" -noout -pubkey)"
check_contains "journal: renewal names the old serial" "\"credential\":\"client_cert\",\"ref\":\"renews:$first_serial\"" \
    "$(cat "$WORK/journal")"

# The leaf alone (no intermediate sent) still chains through the CA's own intermediate; TLS 1.2 too.
sign "$WORK/web2.json" --cert "$WORK/renewed.leaf.pem" --key "$WORK/web2.key" --tlsv1.2 --tls-max 1.2
check "renewal with leaf only over TLS 1.2" 200 "$STATUS"
sign "$WORK/web2.json" --http2 --cert "$WORK/renewed.chain.pem" --key "$WORK/web2.key"
check "renewal over HTTP/2" 200 "$STATUS"

# Refusals.
"$SEAM_CERTS" issue --ca-dir "$WORK/other-ca" --spiffe-id "$WEB_ID" --out "$WORK/foreign" >/dev/null
expect_refusal "renewal cert from another CA" 401 client-cert-untrusted "$WORK/web2.json" \
    --cert "$WORK/foreign.pem" --key "$WORK/foreign.key"
"$SEAM_TESTCERT" --ca-dir "$WORK/ca" --uri "$WEB_ID" --not-before -7200 --not-after -3600 --out "$WORK/expired"
expect_refusal "renewal cert expired" 401 client-cert-expired "$WORK/web2.json" \
    --cert "$WORK/expired.pem" --key "$WORK/expired.key"
"$SEAM_TESTCERT" --self-signed --uri "$WEB_ID" --out "$WORK/selfsigned"
expect_refusal "self-signed renewal cert" 401 client-cert-untrusted "$WORK/web2.json" \
    --cert "$WORK/selfsigned.pem" --key "$WORK/selfsigned.key"
"$SEAM_TESTCERT" --ca-dir "$WORK/ca" --uri "$WEB_ID" --eku server --out "$WORK/serveronly"
expect_refusal "renewal cert without clientAuth" 401 client-cert-invalid "$WORK/web2.json" \
    --cert "$WORK/serveronly.pem" --key "$WORK/serveronly.key"
"$SEAM_CERTS" issue --ca-dir "$WORK/ca" --spiffe-id "$DB_ID" --out "$WORK/db" >/dev/null
expect_refusal "renewal cert of another identity" 403 identity-mismatch "$WORK/web2.json" \
    --cert "$WORK/db.pem" --key "$WORK/db.key"
# A Bearer credential takes precedence over the client certificate.
expect_refusal "Bearer comes first" 401 join-token-unknown "$WORK/web2.json" \
    --cert "$WORK/web.chain.pem" --key "$WORK/web.key" -H "Authorization: Bearer seam-join-nope"

check_contains "metrics: renewals" 'seam_ca_sign_total{result="ok",credential="client_cert"} 3' \
    "$(ca_curl "$CA_URL/metrics")"
stopped "SIGTERM" "$CA_PID" "$WORK/ca.log"
finish
