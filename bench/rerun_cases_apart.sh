#!/usr/bin/env bash
# rerun_cases_apart.sh: reruns, one process each, the Catch2 test cases that runs of a test executable have not
# settled (neither passed nor failed alone: catch_cases.sh), so that a device fault (sticky for the rest of its
# process), a crash or a time limit in one case does not hide the verdicts of the others, and appends each
# verdict to the case log ("alone-pass" or "alone-fail"; none for NODEVICE or UNMATCHED). bench/device_check.sh
# calls it when the GPU suite fails, or leaves cases failed in a shared process, cut or stopped inside.
#
#   bash bench/rerun_cases_apart.sh TESTS CASE_LOG OUT_DIR [LIMIT_S [SPEC]]
#     TESTS      the test executable (tests/resnest_cuda_tests, tests/resnest_tests)
#     CASE_LOG   the file the runs wrote with RESNEST_TEST_CASE_LOG set (lines "start|pass|fail|cut<TAB>name"),
#                and earlier reruns ("alone-pass|alone-fail<TAB>name")
#     OUT_DIR    one log per rerun case (case_<i>.log) and cases.tsv ("verdict<TAB>seconds<TAB>name"; the
#                verdicts PASS, FAIL(rc), TIMEOUT, KILLED(137) (a SIGKILL before the limit), NODEVICE(77),
#                UNMATCHED (the spec ran no case))
#     LIMIT_S    each case's time limit in whole seconds (default 120)
#     SPEC       the test spec the run was given, if any (its cases are the ones considered)
# Prints the case the run stopped inside (a "start" with no end), then one line per rerun case and a count.
# Exits 0 when every rerun case passed (or none needed one), 1 otherwise, 2 on a usage error.
set -uo pipefail
if (($# < 3)); then
    echo "usage: bash bench/rerun_cases_apart.sh TESTS CASE_LOG OUT_DIR [LIMIT_S [SPEC]]" >&2
    exit 2
fi
TESTS=$1 CASE_LOG=$2 OUT_DIR=$3 LIMIT_S=${4:-120} SPEC=${5:-}
if [[ ! $LIMIT_S =~ ^[1-9][0-9]*$ ]]; then
    echo "rerun_cases_apart: LIMIT_S '$LIMIT_S' is not a whole number of seconds" >&2
    exit 2
fi
# A SIGTERM from a time limit around this script (device_check's stage) reaches the running case's timeout
# too (one process group): with a trap, this shell ends only once that case has (bash runs a trap after the
# command in progress), so the case cannot outlive the stage.
trap 'exit 143' TERM
# shellcheck source=catch_cases.sh
source "$(dirname "$0")/catch_cases.sh"
if [[ ! -x $TESTS ]]; then
    echo "rerun_cases_apart: $TESTS is not an executable; build the tests first" >&2
    exit 2
fi
mkdir -p "$OUT_DIR"
touch "$CASE_LOG"

# The last case started and never ended: where the run stopped.
last=$(catch_case_stopped_inside "$CASE_LOG")
[[ -n $last ]] && echo "rerun_cases_apart: the run stopped inside \"$last\""

mapfile -t names < <(catch_case_names "$TESTS" "$SPEC")
if ((${#names[@]} == 0)); then
    echo "rerun_cases_apart: $TESTS lists no test case${SPEC:+ for $SPEC}" >&2
    exit 1
fi

: >"$OUT_DIR/cases.tsv"
rerun=0 failed=0 i=0
for name in "${names[@]}"; do
    catch_case_settled "$CASE_LOG" "$name" && continue
    i=$((i + 1))
    catch_spec_line "$name" >"$OUT_DIR/case_$i.spec"
    t0=$SECONDS
    # --foreground: in the caller's process group, so a stage limit around this script stops the case too
    # (a timeout of its own group would outlive it); SIGKILL 10 s after a SIGTERM the case does not end on.
    timeout --foreground -k 10 "$LIMIT_S" "$TESTS" -f "$OUT_DIR/case_$i.spec" --durations yes \
        >"$OUT_DIR/case_$i.log" 2>&1
    rc=$?
    verdict=$(exit_verdict $rc $((SECONDS - t0)) "$LIMIT_S")
    # 77 from a case asked to run again: the executable found no device (one lost after a fault), no skip.
    [[ $verdict == SKIP ]] && verdict="NODEVICE(77)"
    # Catch2 exits 0 when its spec matched nothing ("No tests ran"): a pass must have run its one case.
    if ((rc == 0)) && ! grep -q "in 1 test case" "$OUT_DIR/case_$i.log"; then verdict=UNMATCHED; fi
    [[ $verdict == PASS ]] || failed=$((failed + 1))
    case $verdict in
        PASS) printf 'alone-pass\t%s\n' "$name" >>"$CASE_LOG" ;;
        FAIL* | TIMEOUT | KILLED*) printf 'alone-fail\t%s\n' "$name" >>"$CASE_LOG" ;;
    esac
    rerun=$((rerun + 1))
    printf '%s\t%d\t%s\n' "$verdict" $((SECONDS - t0)) "$name" | tee -a "$OUT_DIR/cases.tsv"
done
echo "rerun_cases_apart: $rerun of ${#names[@]} cases rerun one process each, $failed not passed"
((failed == 0))
