#!/usr/bin/env bash
# Offline checks of everything under k8s/: yamllint, `kubectl kustomize` of
# every kustomization, field names/types/required fields of every rendered
# object, kubectl's typed round trip of every pod template, the inject
# helper, the examples that are its output, the interception rules, and drift
# between the manifests and the real binaries' flags.
# With CERTS_BIN, every rendered sidecar also runs against a local seam-ca.
# usage: tests/k8s/run.sh SIDECAR_BIN CA_BIN [CERTS_BIN]
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
sidecar=${1:?sidecar binary}
ca=${2:?seam-ca binary}
certs=${3:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export HOME=${HOME:-$work}
passed=0 failed=0

step() { # NAME CMD...: runs a check whose output ends with "N passed, M failed" or is judged by exit code
    local name=$1
    shift
    "$@" >"$work/out" 2>&1
    local rc=$?
    grep -E '^(not ok|ok) ' "$work/out" | grep '^not ok' || true
    local line p f
    line=$(grep -E '[0-9]+ passed, [0-9]+ failed' "$work/out" | tail -1)
    if [ -n "$line" ]; then
        p=$(sed -E 's/.* ([0-9]+) passed.*/\1/' <<<"$line")
        f=$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")
    elif [ "$rc" -eq 0 ]; then
        p=1 f=0
    else
        p=0 f=1
        cat "$work/out"
    fi
    [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
    echo "k8s $name: $p passed, $f failed"
    passed=$((passed + p))
    failed=$((failed + f))
}

[ -d "$here/node_modules" ] || (cd "$here" && npm ci --no-audit --no-fund >/dev/null)

step yamllint yamllint -c "$top/k8s/.yamllint" "$top/k8s"
mkdir -p "$work/rendered"
while IFS= read -r kfile; do
    dir=$(dirname "$kfile")
    name=$(realpath --relative-to="$top/k8s" "$dir" | tr / _)
    step "kustomize $name" kubectl kustomize "$dir" -o "$work/rendered/$name.yaml"
done < <(find "$top/k8s" -name kustomization.yaml | sort)
step "types and fields" node "$here/validate.js" "$work"/rendered/*.yaml
step "kubectl round trip" python3 "$here/roundtrip.py" "$work"/rendered/*.yaml
step "inject helper" "$here/inject_test.sh"
step "injected examples" "$here/inject_examples_test.sh"
step "interception rules" "$here/iptables_test.sh"
step "manifests match binaries" python3 "$here/drift.py" --sidecar "$sidecar" --ca "$ca" ${certs:+--certs "$certs"} \
    "$work"/rendered/*.yaml

echo "k8s: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
