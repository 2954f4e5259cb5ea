#!/usr/bin/env bash
# catch_cases.sh: what bench/rerun_cases_apart.sh, bench/run_cases_left.sh and bench/device_check.sh share
# about a Catch2 test executable and the case log its runs write (RESNEST_TEST_CASE_LOG:
# "start|pass|fail|cut<TAB>name" lines; a case cut by a signal, as a time limit sends, has no verdict), and
# the verdict of a command run under a time limit.
# Sourced, not run.

# The verdict of a command run under `timeout -k`: PASS, SKIP (77), TIMEOUT (124; 137 once the limit had
# passed, the limit's SIGKILL), KILLED(137) (a SIGKILL before it, as by the out-of-memory killer), FAIL(rc).
exit_verdict() {  # exit_verdict RC SECONDS_TAKEN LIMIT_S
    local rc=$1 took=$2 limit=$3
    if [[ ! $rc =~ ^[0-9]+$ ]]; then
        echo "FAIL($rc)"
    elif ((rc == 0)); then
        echo PASS
    elif ((rc == 77)); then
        echo SKIP
    elif ((rc == 124)); then
        echo TIMEOUT
    elif ((rc == 137)); then
        if ((took >= limit)) 2>/dev/null; then echo TIMEOUT; else echo "KILLED(137)"; fi
    else
        echo "FAIL($rc)"
    fi
}

# Every case of the spec, one name a line (a "resnest_cuda_tests: ..." line the executable may print first is
# not one).
catch_case_names() {  # catch_case_names TESTS [SPEC]
    "$1" --list-test-names-only ${2:+"$2"} 2>/dev/null | grep -v -E '^resnest_(cuda_)?tests: ' |
        sed -e 's/[[:space:]]*$//' -e '/^$/d'
}

# A case name as one line of a -f spec file: Catch2 v2 splits a spec at commas even inside quotes, so they
# are escaped (and backslashes with them).
catch_spec_line() {  # catch_spec_line NAME
    printf '%s\n' "$1" | sed -e 's/[\\,]/\\&/g'
}

# Whether the case log gives NAME a pass; a verdict, pass or fail.
catch_case_passed() { grep -qxF "pass	$2" "$1"; }  # catch_case_passed LOG NAME
catch_case_ended() {                                # catch_case_ended LOG NAME
    grep -qxF "pass	$2" "$1" || grep -qxF "fail	$2" "$1"
}

# The case a run stopped inside: the last one started that has no verdict after its start.
catch_case_stopped_inside() {  # catch_case_stopped_inside LOG
    awk -F'\t' '$1 == "start" { open[$2] = NR; order[NR] = $2 } $1 == "pass" || $1 == "fail" { delete open[$2] }
        END { best = 0; for (n in open) if (open[n] > best) best = open[n]; if (best) print order[best] }' "$1"
}
