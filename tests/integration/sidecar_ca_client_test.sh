#!/usr/bin/env bash
# The sidecar's seam-ca client against a real seam-ca on 127.0.0.1: bootstrap
# with a join token, renewals over mTLS with no token, the bundle, and each
# failure named the way the sidecar will log it.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ca_common.sh"

CLIENT=$(seam_bin tests/tools/seam-test-ca-client)
cd "$WORK" || exit 1
make_ca_dir ca
make_ca_dir other
CA_BUNDLE=ca/bundle.pem
start_ca ca --ca-dir ca --trust-domain $TD --journal journal.jsonl --join-tokens tokens.jsonl || exit 1
URL="https://127.0.0.1:$CA_PORT"
"$SEAM_CA" token create --join-tokens tokens.jsonl --spiffe-id "$WEB_ID" >token

out=$("$CLIENT" --ca-url "$URL" --ca-bundle ca/bundle.pem --spiffe-id "$WEB_ID" --token-file token --renewals 3 --ttl 60 2>&1)
check "bootstrap + 3 renewals succeed" 0 $?
check "one line per step" 4 "$(printf '%s\n' "$out" | grep -cE '^(issued|renewed) ')"
check "bootstrap used the token" 1 "$(printf '%s\n' "$out" | grep -c '^issued ')"
check "every certificate names the workload" 4 "$(printf '%s\n' "$out" | grep -c " $WEB_ID ")"
check "every serial is new" 4 "$(printf '%s\n' "$out" | awk '{print $2}' | sort -u | wc -l)"
check "lifetime is the requested ttl plus the 60 s backdate" 4 "$(printf '%s\n' "$out" | grep -c ' 120$')"
check "the CA saw one token and three client certificates" "1 3" \
    "$(grep -c '"credential":"join_token"' journal.jsonl) $(grep -c '"credential":"client_cert"' journal.jsonl)"

out=$("$CLIENT" --ca-url "$URL" --ca-bundle ca/bundle.pem --spiffe-id "$WEB_ID" --token-file token 2>&1)
check "a spent token is refused" 1 $?
check_contains "the refusal carries the CA's error code" "failed refused: seam-ca refused (401 join-token-used)" "$out"

out=$("$CLIENT" --ca-url "$URL" --ca-bundle other/bundle.pem --spiffe-id "$WEB_ID" --token-file token 2>&1)
check "a CA outside our bundle fails" 1 $?
check_contains "named as untrusted-root" "failed tls: seam-ca at $URL: untrusted-root" "$out"

out=$("$CLIENT" --ca-url "$URL" --ca-bundle ca/bundle.pem --spiffe-id "$WEB_ID" --token-file token \
    --ca-id "spiffe://$TD/ns/default/sa/impostor" 2>&1)
check "a CA with another identity fails" 1 $?
check_contains "named as name-mismatch with both IDs" "name-mismatch: expected spiffe://$TD/ns/default/sa/impostor, got spiffe://$TD/ns/seam-system/sa/seam-ca" "$out"

out=$("$CLIENT" --ca-url "$URL" --ca-bundle ca/bundle.pem --spiffe-id "$WEB_ID" --bundle-only 2>&1)
check "bundle fetch" "bundle 1 root(s)" "$out"

out=$("$CLIENT" --ca-url "http://127.0.0.1:$CA_PORT" --ca-bundle ca/bundle.pem --spiffe-id "$WEB_ID" --token-file token 2>&1)
check "plain http is never used" 1 $?
check_contains "plain http refused by URL" "not an https://HOST[:PORT] URL" "$out"

stop_pid "$CA_PID"
out=$("$CLIENT" --ca-url "$URL" --ca-bundle ca/bundle.pem --spiffe-id "$WEB_ID" --token-file token 2>&1)
check "CA down fails" 1 $?
check_contains "named as unreachable" "failed unreachable: 127.0.0.1:$CA_PORT refused the connection" "$out"

grep -q "PRIVATE KEY" "$WORK"/*.log journal.jsonl && fail "no private key in any log or journal" || pass "no private key in any log or journal"
finish
