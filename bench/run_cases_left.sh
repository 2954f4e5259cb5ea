#!/usr/bin/env bash
# run_cases_left.sh: runs, in one process, the Catch2 test cases of a suite that an earlier run never reached,
# appending to that run's case log, so that a GPU suite longer than one device call finishes in the next call on
# the same machine (device_check.sh's tests_rest). A case the earlier run started without a verdict (cut by its
# time limit, or where it stopped) is left out: it may be what hangs, so it runs alone afterwards
# (rerun_cases_apart.sh, as device_check.sh's tests_rest_apart stage does).
#
#   bash bench/run_cases_left.sh TESTS CASE_LOG SPEC_FILE [SPEC]
#     TESTS      the test executable (tests/resnest_cuda_tests, tests/resnest_tests)
#     CASE_LOG   the earlier run's case log (RESNEST_TEST_CASE_LOG); this run appends its own lines to it
#     SPEC_FILE  written here: the cases left, one escaped name a line, as Catch2's -f reads them
#     SPEC       the test spec the earlier run was given, if any (its cases are the ones considered)
# Prints the case the earlier run stopped inside, how many are left and how many wait to run alone, then runs
# the ones left (--durations yes). Exits as the test executable does; 77 when there is no case log (no earlier
# run on this machine) or no case is left; 2 on a usage error.
set -uo pipefail
if (($# < 3)); then
    echo "usage: bash bench/run_cases_left.sh TESTS CASE_LOG SPEC_FILE [SPEC]" >&2
    exit 2
fi
TESTS=$1 CASE_LOG=$2 SPEC_FILE=$3 SPEC=${4:-}
# shellcheck source=catch_cases.sh
source "$(dirname "$0")/catch_cases.sh"
if [[ ! -x $TESTS ]]; then
    echo "run_cases_left: $TESTS is not an executable; build the tests first" >&2
    exit 2
fi
if [[ ! -f $CASE_LOG ]]; then
    echo "run_cases_left: no case log $CASE_LOG: no earlier run on this machine (run the whole suite instead)"
    exit 77
fi
mapfile -t names < <(catch_case_names "$TESTS" "$SPEC")
if ((${#names[@]} == 0)); then
    echo "run_cases_left: $TESTS lists no test case${SPEC:+ for $SPEC}" >&2
    exit 1
fi
last=$(catch_case_stopped_inside "$CASE_LOG")
[[ -n $last ]] && echo "run_cases_left: the earlier run stopped inside \"$last\""
: >"$SPEC_FILE"
left=0 alone=0
for name in "${names[@]}"; do
    catch_case_ended "$CASE_LOG" "$name" && continue
    if catch_case_started "$CASE_LOG" "$name"; then
        alone=$((alone + 1))
        continue
    fi
    catch_spec_line "$name" >>"$SPEC_FILE"
    left=$((left + 1))
done
echo "run_cases_left: $left of ${#names[@]} cases have no verdict in $CASE_LOG; $alone started without one" \
    "(cut, or where a run stopped) run alone afterwards"
((left == 0)) && exit 77
# exec: the test process takes this shell's place, so a time limit around this script (timeout -k) signals
# and, should it not end on the signal, kills the test itself rather than a shell that dies first.
RESNEST_TEST_CASE_LOG=$CASE_LOG exec "$TESTS" -f "$SPEC_FILE" --durations yes
