# lib.sh: helpers the CLI test scripts source: a temp folder, pass/fail counters, and `expect`.
#
# expect CODE PATTERN -- command...: exit status CODE; when CODE is not 0, exactly one stderr line; PATTERN
# (grep -E) somewhere in stdout or stderr. A script ends with `finish`, which prints "N passed, M failed".
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
passed=0 failed=0

ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }

expect() {
    local code=$1 pattern=$2
    shift 3
    "$@" >"$TMP/out" 2>"$TMP/err"
    local rc=$?
    local lines
    lines=$(wc -l <"$TMP/err")
    if [ "$rc" != "$code" ]; then bad "$* -> exit $rc, wanted $code; stderr: $(cat "$TMP/err")"; return; fi
    if [ "$code" != 0 ] && [ "$lines" != 1 ]; then bad "$* -> $lines stderr lines, wanted 1: $(cat "$TMP/err")"; return; fi
    if ! grep -Eq -- "$pattern" "$TMP/err" "$TMP/out"; then bad "$* -> output lacks /$pattern/: $(cat "$TMP/err" "$TMP/out")"; return; fi
    ok
}

finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" = 0 ]
}
