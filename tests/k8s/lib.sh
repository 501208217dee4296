# What the tool tests here share: a scratch folder removed on exit, ok/bad
# counters, and the summary line that decides the exit status. Source it after
# setting nothing; it sets here, top and work.
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok - $1"; }
bad() { failed=$((failed + 1)); echo "not ok - $1${2:+: $2}"; }
# summary NAME: "NAME: P passed, F failed"; true only when nothing failed and something passed
summary() {
    echo "$1: $passed passed, $failed failed"
    [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
}
