#!/usr/bin/env bash
# seam-certs CLI end to end: init-root, issue, inspect, verify, check-expiry,
# and a one-line error with the right exit code for every kind of bad input.
source "$(dirname "$0")/lib.sh"

CERTS=$(seam_bin certs/seam-certs)
TESTCERT=$(seam_bin tests/tools/seam-testcert)
TD=cluster.local
ID=spiffe://$TD/ns/default/sa/backend
cd "$WORK" || exit 1

# run NAME WANT_RC CMD...: runs CMD, keeps stdout in $OUT and stderr in $ERR, checks the exit code.
run() {
    local name=$1 want=$2
    shift 2
    "$@" >"$WORK/out" 2>"$WORK/err"
    local rc=$?
    OUT=$(cat "$WORK/out")
    ERR=$(cat "$WORK/err")
    check "$name: exit code" "$want" "$rc"
}

# one_line NAME NEEDLE: stderr is exactly one line and names NEEDLE.
one_line() {
    check "$1: one error line" 1 "$(printf '%s\n' "$ERR" | grep -c .)"
    check_contains "$1: names $2" "$2" "$ERR"
}

# --- basics
run "--version" 0 "$CERTS" --version
check_contains "--version prints the version" "seam-certs 0." "$OUT"
run "--help" 0 "$CERTS" --help
check_contains "--help lists diagnose" "diagnose HOST:PORT" "$OUT"
run "no command" 2 "$CERTS"
run "unknown command" 2 "$CERTS" frobnicate
check_contains "unknown command named" "frobnicate" "$ERR"
run "unknown flag" 2 "$CERTS" inspect --bogus x.pem
run "flag of another command" 2 "$CERTS" inspect --ttl 1h x.pem
run "missing --trust-domain" 2 "$CERTS" init-root --out ca
check_contains "missing flag named" "--trust-domain" "$ERR"
run "bad trust domain" 2 "$CERTS" init-root --out ca --trust-domain Cluster.Local
one_line "bad trust domain" "Cluster.Local"
run "bad --days" 2 "$CERTS" init-root --out ca --trust-domain $TD --days -3
run "bad --ttl" 2 "$CERTS" issue --ca-dir ca --spiffe-id $ID --ttl 5x --out leaf

# --- init-root
run "init-root" 0 "$CERTS" init-root --out ca --trust-domain $TD
for f in root.pem root.key intermediate.pem intermediate.key bundle.pem; do
    [ -f "ca/$f" ] && pass "init-root wrote $f" || fail "init-root wrote $f"
done
check "root.key is 0600" 600 "$(stat -c %a ca/root.key)"
check "intermediate.key is 0600" 600 "$(stat -c %a ca/intermediate.key)"
# init-root says where the keys are, never what they are: no private-key PEM block on stdout or
# stderr, and none of the base64 lines of the key files it wrote (the key, even without its armour)
case "$OUT$ERR" in *"PRIVATE KEY"*) fail "init-root prints no private-key block" ;; *) pass "init-root prints no private-key block" ;; esac
check "init-root prints no line of the keys it wrote" "" \
    "$(grep -hv -- '-----' ca/root.key ca/intermediate.key | grep -hF -f - "$WORK/out" "$WORK/err")"
run "init-root refuses to overwrite" 1 "$CERTS" init-root --out ca --trust-domain $TD
one_line "init-root refuses to overwrite" "ca/root.key"
check "openssl accepts the intermediate" "ca/intermediate.pem: OK" "$(openssl verify -CAfile ca/root.pem ca/intermediate.pem 2>&1)"
check_contains "intermediate is name-constrained" "URI:$TD" "$(openssl x509 -in ca/intermediate.pem -noout -ext nameConstraints 2>&1)"

# --- issue
run "issue" 0 "$CERTS" issue --ca-dir ca --spiffe-id $ID --ttl 2h --out backend
check "leaf key is 0600" 600 "$(stat -c %a backend.key)"
check "leaf file holds leaf + intermediate" 2 "$(grep -c 'BEGIN CERTIFICATE' backend.pem)"
check "openssl verifies the issued chain" "backend.pem: OK" \
    "$(openssl verify -CAfile ca/bundle.pem -untrusted backend.pem backend.pem 2>&1)"
check_contains "leaf SAN is the SPIFFE ID" "URI:$ID" "$(openssl x509 -in backend.pem -noout -ext subjectAltName 2>&1)"
check_contains "leaf SAN is critical" "critical" "$(openssl x509 -in backend.pem -noout -ext subjectAltName 2>&1)"
check_contains "leaf is not a CA" "CA:FALSE" "$(openssl x509 -in backend.pem -noout -ext basicConstraints 2>&1)"
check_contains "leaf has both EKUs" "TLS Web Server Authentication, TLS Web Client Authentication" \
    "$(openssl x509 -in backend.pem -noout -ext extendedKeyUsage 2>&1)"
run "issue outside the trust domain" 1 "$CERTS" issue --ca-dir ca --spiffe-id spiffe://other.td/ns/a/sa/b --out x
one_line "issue outside the trust domain" "name-constraint"
run "issue with a bad SPIFFE ID" 2 "$CERTS" issue --ca-dir ca --spiffe-id spiffe://$TD/ns/../sa/b --out x
one_line "issue with a bad SPIFFE ID" "'.' or '..'"
run "issue from a missing CA dir" 1 "$CERTS" issue --ca-dir nowhere --spiffe-id $ID --out x
one_line "issue from a missing CA dir" "nowhere/intermediate.pem: No such file or directory"
mkdir -p badca && cp ca/intermediate.pem ca/bundle.pem badca/ && cp backend.key badca/intermediate.key
run "issue with the wrong CA key" 1 "$CERTS" issue --ca-dir badca --spiffe-id $ID --out x
one_line "issue with the wrong CA key" "does not match"

# --- inspect
run "inspect" 0 "$CERTS" inspect backend.pem
check_contains "inspect shows the SPIFFE ID" "spiffe_id:  $ID" "$OUT"
check_contains "inspect shows the key type" "key:        ECDSA P-256" "$OUT"
check_contains "inspect shows the intermediate" "certificate 1 (CA)" "$OUT"
check_match "inspect shows time left" "time_left:  (2h0m|1h59m)" "$OUT"
run "inspect from stdin" 0 "$CERTS" inspect - <ca/root.pem
check_contains "inspect from stdin reads the root" "Seam root CA $TD" "$OUT"
run "inspect a key file" 1 "$CERTS" inspect backend.key
one_line "inspect a key file" "no certificate found"
case "$OUT$ERR" in *BEGIN*|*PRIVATE*) fail "inspect never prints key material" ;; *) pass "inspect never prints key material" ;; esac
echo "not a certificate" >junk.pem
run "inspect not PEM" 1 "$CERTS" inspect junk.pem
one_line "inspect not PEM" "junk.pem: not PEM data"
head -c 300 backend.pem >trunc.pem
run "inspect truncated DER" 1 "$CERTS" inspect trunc.pem
one_line "inspect truncated DER" "trunc.pem: PEM block holds truncated or malformed DER"
run "inspect unreadable" 1 "$CERTS" inspect missing.pem
one_line "inspect unreadable" "missing.pem: No such file or directory"
run "inspect a directory" 1 "$CERTS" inspect ca
one_line "inspect a directory" "ca: Is a directory"

# --- verify
run "verify ok" 0 "$CERTS" verify --bundle ca/bundle.pem backend.pem
check "verify ok prints the ID" "ok: $ID" "$OUT"
run "verify expected ID" 0 "$CERTS" verify --bundle ca/bundle.pem --spiffe-id $ID backend.pem
run "verify wrong ID" 1 "$CERTS" verify --bundle ca/bundle.pem --spiffe-id spiffe://$TD/ns/default/sa/db backend.pem
check_contains "verify wrong ID category" "identity-mismatch: expected spiffe://$TD/ns/default/sa/db, got $ID" "$OUT"
"$CERTS" init-root --out other --trust-domain $TD >/dev/null
"$CERTS" issue --ca-dir other --spiffe-id $ID --out foreign >/dev/null
run "verify other CA" 1 "$CERTS" verify --bundle ca/bundle.pem foreign.pem
check_contains "verify other CA category" "untrusted-root" "$OUT"
run "verify both roots" 0 "$CERTS" verify --bundle <(cat ca/bundle.pem other/bundle.pem) foreign.pem
sed -n '1,/END CERTIFICATE/p' backend.pem >leafonly.pem
run "verify lone leaf" 1 "$CERTS" verify --bundle ca/bundle.pem leafonly.pem
check_contains "verify lone leaf category" "missing-intermediate" "$OUT"
"$TESTCERT" --ca-dir ca --uri $ID --not-before -7200 --not-after -3600 --out expired
run "verify expired" 1 "$CERTS" verify --bundle ca/bundle.pem expired.pem
check_contains "verify expired category" "expired:" "$OUT"
"$TESTCERT" --ca-dir ca --uri $ID --not-before 3600 --not-after 7200 --out future
run "verify not yet valid" 1 "$CERTS" verify --bundle ca/bundle.pem future.pem
check_contains "verify not-yet-valid category" "not-yet-valid:" "$OUT"
"$TESTCERT" --ca-dir ca --dns web.default.svc --subject-cn web --out nouri
run "verify no URI SAN" 1 "$CERTS" verify --bundle ca/bundle.pem nouri.pem
check_contains "verify no-uri-san category" "no-uri-san:" "$OUT"
"$TESTCERT" --ca-dir ca --uri $ID --uri spiffe://$TD/ns/default/sa/admin --out twouri
run "verify two URI SANs" 1 "$CERTS" verify --bundle ca/bundle.pem twouri.pem
check_contains "verify several-uri-sans category" "several-uri-sans:" "$OUT"
"$TESTCERT" --ca-dir ca --uri $ID --ca --key-usage digitalSignature,keyCertSign --out caleaf
run "verify CA:TRUE leaf" 1 "$CERTS" verify --bundle ca/bundle.pem caleaf.pem
check_contains "verify not-a-leaf category" "not-a-leaf:" "$OUT"
"$TESTCERT" --ca-dir ca --uri $ID --key-usage keyCertSign --out badku
run "verify wrong key usage" 1 "$CERTS" verify --bundle ca/bundle.pem badku.pem
check_contains "verify wrong-key-usage category" "wrong-key-usage:" "$OUT"
run "verify with a leaf as bundle" 1 "$CERTS" verify --bundle backend.pem backend.pem
one_line "verify with a leaf as bundle" "not a CA"
run "verify bundle not PEM" 1 "$CERTS" verify --bundle junk.pem backend.pem
one_line "verify bundle not PEM" "junk.pem"

# --- check-expiry
run "check-expiry ok" 0 "$CERTS" check-expiry --warn 1h backend.pem ca/root.pem
check_match "check-expiry ok line" "backend.pem: ok: expires in (2h0m|1h59m)" "$OUT"
run "check-expiry warn" 3 "$CERTS" check-expiry --warn 3h backend.pem
check_contains "check-expiry warn line" "backend.pem: warning:" "$OUT"
run "check-expiry default warn is 30d" 3 "$CERTS" check-expiry backend.pem
run "check-expiry expired" 1 "$CERTS" check-expiry backend.pem expired.pem
check_match "check-expiry expired line" "expired.pem: expired: certificate 0 expired (1h0m|59m[0-9]+s) ago" "$OUT"
run "check-expiry unreadable" 1 "$CERTS" check-expiry missing.pem
one_line "check-expiry unreadable" "missing.pem"
run "check-expiry bad --warn" 2 "$CERTS" check-expiry --warn soon backend.pem
run "check-expiry needs a file" 2 "$CERTS" check-expiry

finish
