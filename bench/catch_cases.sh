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

# Verdict lines: the test executable writes "pass" and "fail" in a process it may share with other cases;
# rerun_cases_apart.sh adds "alone-pass" and "alone-fail" for a case run in a process of its own. A fail in a
# shared process may be an earlier case's device fault (sticky for the rest of that process): only a fail
# alone settles a case as failed.
catch_case_passed() {  # catch_case_passed LOG NAME: a pass, shared or alone
    grep -qxF "pass	$2" "$1" || grep -qxF "alone-pass	$2" "$1"
}
catch_case_ended() {  # catch_case_ended LOG NAME: any verdict, a shared fail too
    catch_case_passed "$1" "$2" || grep -qxF "fail	$2" "$1" || grep -qxF "alone-fail	$2" "$1"
}
catch_case_settled() {  # catch_case_settled LOG NAME: passed, or failed alone
    catch_case_passed "$1" "$2" || grep -qxF "alone-fail	$2" "$1"
}
catch_case_started() { grep -qxF "start	$2" "$1"; }  # catch_case_started LOG NAME

# How many cases of the log were started and are not settled (failed in a shared process, cut, or stopped
# inside a run): the ones to run alone.
catch_cases_to_settle() {  # catch_cases_to_settle LOG
    awk -F'\t' '$1 == "start" { s[$2] = 1 } $1 == "pass" || $1 == "alone-pass" || $1 == "alone-fail" { d[$2] = 1 }
        END { for (n in s) if (!(n in d)) c++; print c + 0 }' "$1"
}

# The case a run stopped inside: the last one started that has no verdict after its start.
catch_case_stopped_inside() {  # catch_case_stopped_inside LOG
    awk -F'\t' '$1 == "start" { open[$2] = NR; order[NR] = $2 } $1 == "pass" || $1 == "fail" { delete open[$2] }
        END { best = 0; for (n in open) if (open[n] > best) best = open[n]; if (best) print order[best] }' "$1"
}
