#!/usr/bin/env bash
# tools/seam-iptables without root: the rules it would install (an iptables on PATH that
# records its arguments) for each exclude/include option, and a one-line refusal, exit 2,
# for every bad value.
set -u
source "$(dirname "$0")/lib.sh"
ipt=$top/tools/seam-iptables

mkdir "$work/bin"
cat >"$work/bin/iptables" <<'SH'
#!/bin/sh
echo "$*" >>"$RULES"
SH
chmod +x "$work/bin/iptables"
export RULES=$work/rules PATH=$work/bin:$PATH
BASE=(--app-ports 8080 --sidecar-uid 15100)

# rules NAME ARGS...: runs seam-iptables; its rules in $work/rules, fails NAME when it exits non-zero.
rules() {
    local name=$1
    shift
    : >"$RULES"
    "$ipt" "$@" 2>"$work/err" || bad "$name" "rc=$? $(cat "$work/err")"
}
has() { # has NAME RULE: the last run installed RULE (a whole line)
    grep -qxF -- "$2" "$RULES" && ok "$1" || bad "$1" "no line [$2] in: $(tr '\n' '|' <"$RULES")"
}
hasnt() { # hasnt NAME PATTERN
    grep -qF -- "$2" "$RULES" && bad "$1" "found [$2]" || ok "$1"
}

rules defaults "${BASE[@]}"
has "the probe port 15020 is never redirected inbound" "-t nat -A SEAM_INBOUND -p tcp --dport 15020 -j RETURN"
has "app ports go to the inbound listener" "-t nat -A SEAM_INBOUND -p tcp --dport 8080 -j REDIRECT --to-ports 15006"
has "by default everything else goes to the outbound listener" "-t nat -A SEAM_OUTPUT -p tcp -j REDIRECT --to-ports 15001"

rules "exclude options" "${BASE[@]}" --exclude-inbound-ports 9090,9091 --exclude-outbound-ports=5432 \
    --exclude-outbound-cidrs 10.96.0.10/32,169.254.169.254 --probe-port 16020
has "--exclude-inbound-ports: each port returns" "-t nat -A SEAM_INBOUND -p tcp --dport 9091 -j RETURN"
has "--probe-port moves the probe exception" "-t nat -A SEAM_INBOUND -p tcp --dport 16020 -j RETURN"
has "--exclude-outbound-ports: the port returns" "-t nat -A SEAM_OUTPUT -p tcp --dport 5432 -j RETURN"
has "--exclude-outbound-cidrs: each CIDR returns" "-t nat -A SEAM_OUTPUT -d 169.254.169.254 -j RETURN"
ex_line=$(grep -n -- '--dport 5432 -j RETURN' "$RULES" | cut -d: -f1)
redir_line=$(grep -n -- 'SEAM_OUTPUT -p tcp -j REDIRECT' "$RULES" | cut -d: -f1)
[ -n "$ex_line" ] && [ -n "$redir_line" ] && [ "$ex_line" -lt "$redir_line" ] &&
    ok "exclusions come before the redirect" || bad "exclusions come before the redirect"

rules "include option" "${BASE[@]}" --include-outbound-cidrs 10.0.0.0/8,192.168.1.0/24
has "--include-outbound-cidrs: each CIDR is redirected" "-t nat -A SEAM_OUTPUT -d 10.0.0.0/8 -p tcp -j REDIRECT --to-ports 15001"
hasnt "--include-outbound-cidrs: nothing else is" "SEAM_OUTPUT -p tcp -j REDIRECT"

rules "--remove" --remove
has "--remove deletes the chains" "-t nat -X SEAM_OUTPUT"

# refuse NAME WANT ARGS...: exit 2, one line naming WANT, and no rule installed
refuse() {
    local name=$1 want=$2
    shift 2
    : >"$RULES"
    "$ipt" "$@" >/dev/null 2>"$work/err"
    local rc=$?
    if [ "$rc" -eq 2 ] && [ "$(grep -c . "$work/err")" = 1 ] && grep -qF -- "$want" "$work/err" && [ ! -s "$RULES" ]; then
        ok "refuses $name"
    else
        bad "refuses $name" "rc=$rc $(cat "$work/err") rules: $(wc -l <"$RULES")"
    fi
}
refuse "a port above 65535" "--exclude-outbound-ports: '70000' is not a port" "${BASE[@]}" --exclude-outbound-ports 80,70000
refuse "a port that is a name" "--exclude-inbound-ports: 'http' is not a port" "${BASE[@]}" --exclude-inbound-ports http
refuse "port 0" "--exclude-inbound-ports: '0' is not a port" "${BASE[@]}" --exclude-inbound-ports 0
refuse "an empty port list" "--exclude-outbound-ports: empty list" "${BASE[@]}" --exclude-outbound-ports=
refuse "an empty item" "--exclude-outbound-ports: '80,,81' has an empty item" "${BASE[@]}" --exclude-outbound-ports 80,,81
refuse "a trailing comma" "has an empty item" "${BASE[@]}" --exclude-outbound-cidrs 10.0.0.0/8,
refuse "an octet above 255" "--exclude-outbound-cidrs: '10.0.0.256' is not an IPv4 address" "${BASE[@]}" \
    --exclude-outbound-cidrs 10.0.0.256
refuse "a prefix above 32" "--include-outbound-cidrs: '10.0.0.0/33' is not an IPv4" "${BASE[@]}" --include-outbound-cidrs 10.0.0.0/33
refuse "three octets" "'10.0.0/8' is not an IPv4" "${BASE[@]}" --include-outbound-cidrs 10.0.0/8
refuse "five octets" "'1.2.3.4.5' is not an IPv4" "${BASE[@]}" --exclude-outbound-cidrs 1.2.3.4.5
refuse "a leading zero" "'10.0.0.010' is not an IPv4" "${BASE[@]}" --exclude-outbound-cidrs 10.0.0.010
refuse "an empty prefix" "'10.0.0.0/' is not an IPv4" "${BASE[@]}" --exclude-outbound-cidrs 10.0.0.0/
refuse "an IPv6 CIDR" "'fd00::/8' is not an IPv4" "${BASE[@]}" --include-outbound-cidrs fd00::/8
refuse "a host name" "'example.com' is not an IPv4" "${BASE[@]}" --exclude-outbound-cidrs example.com
refuse "a bad --probe-port" "--probe-port: '99999' is not a port" "${BASE[@]}" --probe-port 99999

summary iptables
