# Shared helpers for Seam's integration tests: binaries, ports, processes, checks.
# Source it from a test script; it sets `set -u` and an EXIT trap that stops
# every process started with `start_bg` by its PID.

set -u

# Resolves a Seam binary: inside `bazel test` from the runfiles tree, otherwise
# from bazel-bin of the workspace (run the script by hand after `bazel build`).
seam_bin() {
    local rel=$1
    if [ -n "${TEST_SRCDIR:-}" ] && [ -x "$TEST_SRCDIR/seam/$rel" ]; then
        echo "$TEST_SRCDIR/seam/$rel"
    else
        local top
        top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
        echo "$top/bazel-bin/$rel"
    fi
}

WORK=$(mktemp -d "${TEST_TMPDIR:-/tmp}/seam-it.XXXXXX")
PIDS=()
PASSED=0
FAILED=0

cleanup() {
    local pid
    for pid in "${PIDS[@]:-}"; do
        [ -n "$pid" ] && kill "$pid" 2>/dev/null
    done
    for pid in "${PIDS[@]:-}"; do
        [ -n "$pid" ] && wait "$pid" 2>/dev/null
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

# A free TCP port on 127.0.0.1 (the kernel picks it; a race with another
# process is possible but rare, and the listener's start-up check catches it).
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# start_bg NAME CMD...: runs CMD in the background with output in $WORK/NAME.log,
# records its PID in PIDS and in the variable LAST_PID.
start_bg() {
    local name=$1
    shift
    "$@" >"$WORK/$name.log" 2>&1 &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
}

# stop_pid PID: stops one process we started (SIGTERM, then waits).
stop_pid() {
    kill "$1" 2>/dev/null
    wait "$1" 2>/dev/null
    return 0
}

# wait_port PORT [SECONDS]: waits until something accepts on 127.0.0.1:PORT.
wait_port() {
    local port=$1 limit=${2:-10} i
    for ((i = 0; i < limit * 10; i++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "nothing listens on 127.0.0.1:$port after ${limit}s" >&2
    return 1
}

pass() {
    PASSED=$((PASSED + 1))
    echo "ok - $1"
}

fail() {
    FAILED=$((FAILED + 1))
    echo "not ok - $1"
    [ $# -gt 1 ] && echo "  # $2"
    return 0
}

# check NAME EXPECTED ACTUAL: passes when the two strings are equal.
check() {
    if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "expected [$2], got [$3]"; fi
}

# check_contains NAME NEEDLE HAYSTACK: passes when HAYSTACK holds NEEDLE. An empty NEEDLE is a
# mistake in the test (it is in every string, so the check could never fail): it fails.
check_contains() {
    if [ -z "$2" ]; then
        fail "$1" "empty needle: this check could never fail"
        return 0
    fi
    case "$3" in
    *"$2"*) pass "$1" ;;
    *) fail "$1" "[$2] not found in [$3]" ;;
    esac
}

# check_match NAME REGEX HAYSTACK: passes when HAYSTACK matches the extended regex.
check_match() {
    if [[ $3 =~ $2 ]]; then pass "$1"; else fail "$1" "/$2/ does not match [$3]"; fi
}

# A process under test crashed when it ends by a signal (a segfault, an abort) or by a sanitizer's
# exit; under ASan + UBSan every report ends it (abort_on_error, halt_on_error). Its log says why when
# it had a word before it went: a sanitizer report, a failed assert(), h2o's "fatal:" line. Checking
# the log alone is not enough: the normal build has no sanitizer, so such a check could not fail there.
CRASH_LINE='AddressSanitizer|LeakSanitizer|runtime error:|Assertion .* failed|^fatal:'

# crash_report LOG: the first crash line of LOG (nothing when it has none; a word when LOG is missing,
# as a check of a file that is not there could never fail).
crash_report() {
    if [ -f "$1" ]; then
        grep -E -m1 "$CRASH_LINE" "$1"
    else
        echo "no log $1"
    fi
}

# survived NAME PID LOG: after NAME, the process PID is still running (not gone, not a zombie) and its
# LOG holds no crash line. The message names the process by its log's name (frontend.err: frontend).
survived() {
    local who state report
    who=$(basename "${3%.*}")
    state=$(awk '/^State:/ {print $2}' "/proc/$2/status" 2>/dev/null)
    report=$(crash_report "$3")
    if [ -n "$state" ] && [ "$state" != Z ] && [ -z "$report" ]; then
        pass "$1: $who is still running, no crash in its log"
    else
        fail "$1: $who is still running, no crash in its log" "${report:-process $2 is ${state:-gone}}"
    fi
}

# exited NAME STATUS LOG: a process stopped on purpose ended as it should: STATUS, its exit status from
# `wait`, is 0 (a crash gives 128 + the signal, a sanitizer's report at exit a status of its own), and
# its LOG holds no crash line.
exited() {
    local who report
    who=$(basename "${3%.*}")
    report=$(crash_report "$3")
    if [ "$2" = 0 ] && [ -z "$report" ]; then
        pass "$1: $who exited 0, no crash in its log"
    else
        fail "$1: $who exited 0, no crash in its log" "${report:-exit status $2}"
    fi
}

# stopped NAME PID LOG: stops the process PID (SIGTERM, then waits for it; it must be a child of
# this shell, or wait says 127) and checks with exited that it ended as it should.
stopped() {
    local status
    kill -TERM "$2" 2>/dev/null
    wait "$2"
    status=$?
    exited "$1" "$status" "$3"
}

# finish: prints the summary line and exits non-zero if anything failed.
finish() {
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ] && [ "$PASSED" -gt 0 ]
    exit $?
}
