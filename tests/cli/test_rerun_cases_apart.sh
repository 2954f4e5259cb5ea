#!/usr/bin/env bash
# test_rerun_cases_apart.sh: the case log a Catch2 run writes (RESNEST_TEST_CASE_LOG),
# bench/rerun_cases_apart.sh, which reruns one process each the cases a run did not pass (device_check.sh's
# answer to a GPU suite cut short by a device fault), and bench/run_cases_left.sh, which runs in one process the
# cases a run left without a verdict (its answer to a suite cut by its time limit). Real cases from the unit
# suite (names with commas, parentheses and colons, read back through Catch2's -f), and a stand-in executable
# for failing and hanging ones; a real SIGTERM inside a running case.
#
#   bash tests/cli/test_rerun_cases_apart.sh UNIT_TESTS SOURCE_DIR
set -uo pipefail
UNIT=$1
SRC=$2
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
RERUN=$SRC/bench/rerun_cases_apart.sh
SPEC="[planner]"

# 1. Every case of the spec logs a start and a pass, in order, each once.
mapfile -t names < <("$UNIT" --list-test-names-only "$SPEC" | sed -e 's/[[:space:]]*$//' -e '/^$/d')
((${#names[@]} >= 3)) && ok || bad "$SPEC lists ${#names[@]} cases, wanted at least 3"
RESNEST_TEST_CASE_LOG=$TMP/log.tsv "$UNIT" "$SPEC" >"$TMP/run.out" 2>&1 || bad "$UNIT $SPEC failed: $(tail -5 "$TMP/run.out")"
expected=$(for n in "${names[@]}"; do printf 'start\t%s\npass\t%s\n' "$n" "$n"; done)
[[ $(cat "$TMP/log.tsv") == "$expected" ]] && ok || bad "case log differs: $(cat "$TMP/log.tsv")"

# 2. A run cut inside its second case: that case is named, and every case from it on reruns alone and passes.
head -2 "$TMP/log.tsv" >"$TMP/cut.tsv"
printf 'start\t%s\n' "${names[1]}" >>"$TMP/cut.tsv"
cp "$TMP/cut.tsv" "$TMP/cut_apart.tsv"
bash "$RERUN" "$UNIT" "$TMP/cut_apart.tsv" "$TMP/apart" 60 "$SPEC" >"$TMP/apart.out" 2>&1
rc=$?
((rc == 0)) && ok || bad "rerun after a cut run exited $rc: $(cat "$TMP/apart.out")"
grep -qF "the run stopped inside \"${names[1]}\"" "$TMP/apart.out" && ok || bad "stopped-inside case not named: $(cat "$TMP/apart.out")"
grep -qF "${names[0]}" "$TMP/apart/cases.tsv" && bad "the passed case ${names[0]} was rerun" || ok
[[ $(grep -c '^PASS' "$TMP/apart/cases.tsv") == $((${#names[@]} - 1)) ]] && ok ||
    bad "wanted $((${#names[@]} - 1)) cases rerun and passed: $(cat "$TMP/apart/cases.tsv")"
for ((i = 1; i < ${#names[@]}; i++)); do
    grep -qxF "$(printf 'PASS\t%s' "${names[i]}")" <(cut -f1,3 "$TMP/apart/cases.tsv") && ok || bad "${names[i]} not rerun"
done
grep -q "1 test case" "$TMP/apart/case_1.log" && ok || bad "a rerun ran more than its one case: $(tail -3 "$TMP/apart/case_1.log")"
# Each rerun's verdict is appended to the case log as a pass alone; nothing is left to settle, and a second
# rerun runs nothing.
expected=$(cat "$TMP/cut.tsv"; for ((i = 1; i < ${#names[@]}; i++)); do printf 'alone-pass\t%s\n' "${names[i]}"; done)
[[ $(cat "$TMP/cut_apart.tsv") == "$expected" ]] && ok || bad "case log after the reruns: $(cat "$TMP/cut_apart.tsv")"
# shellcheck source=../../bench/catch_cases.sh
source "$SRC/bench/catch_cases.sh"
[[ $(catch_cases_to_settle "$TMP/cut.tsv") == 1 && $(catch_cases_to_settle "$TMP/cut_apart.tsv") == 0 ]] && ok ||
    bad "cases to settle: $(catch_cases_to_settle "$TMP/cut.tsv") before the reruns, $(catch_cases_to_settle "$TMP/cut_apart.tsv") after"
bash "$RERUN" "$UNIT" "$TMP/cut_apart.tsv" "$TMP/apart2" 60 "$SPEC" >"$TMP/apart2.out" 2>&1 && ok || bad "second rerun: $(cat "$TMP/apart2.out")"
grep -q "0 of ${#names[@]} cases rerun" "$TMP/apart2.out" && ok || bad "a settled case ran again: $(cat "$TMP/apart2.out")"

# 3. Failing, hanging and unmatched cases (a stand-in for the test executable): each named with its verdict.
cat >"$TMP/fake_tests" <<'FAKE'
#!/usr/bin/env bash
names=("passes alone" "fails, with a comma" "hangs: past its limit" "matches nothing" "killed: before its limit"
    "no device: exits 77")
if [[ $1 == --list-test-names-only ]]; then echo "resnest_cuda_tests: a banner line"; printf '%s\n' "${names[@]}"; exit 4; fi
case $(sed 's/\\\(.\)/\1/g' "$2") in  # the spec line unescaped, as Catch2 reads it
    "passes alone") echo "All tests passed (1 assertion in 1 test case)" ;;
    "fails, with a comma") exit 1 ;;
    "hangs: past its limit") exec sleep 30 ;;
    "killed: before its limit") kill -KILL $$ ;;  # exit 137 well before the limit: not a timeout
    "no device: exits 77") exit 77 ;;  # a case asked to run again that finds no device: not a skip
    *) echo "No test cases matched" ;;
esac
FAKE
chmod +x "$TMP/fake_tests"
: >"$TMP/empty.tsv"
bash "$RERUN" "$TMP/fake_tests" "$TMP/empty.tsv" "$TMP/fake" 2 >"$TMP/fake.out" 2>&1
rc=$?
((rc == 1)) && ok || bad "rerun with failures exited $rc, wanted 1: $(cat "$TMP/fake.out")"
for want in "PASS passes alone" "FAIL(1) fails, with a comma" "TIMEOUT hangs: past its limit" "UNMATCHED matches nothing" \
    "KILLED(137) killed: before its limit" "NODEVICE(77) no device: exits 77"; do
    grep -qxF "$want" <(cut -f1,3 "$TMP/fake/cases.tsv" | tr '\t' ' ') && ok || bad "no line '$want': $(cat "$TMP/fake/cases.tsv")"
done
grep -q "banner" "$TMP/fake/cases.tsv" && bad "the banner line was taken for a case" || ok
grep -q "6 of 6 cases rerun one process each, 5 not passed" "$TMP/fake.out" && ok || bad "count line: $(tail -1 "$TMP/fake.out")"
# The case log gains each verdict alone, a timeout and a kill as failures; no verdict where the case found
# no device or the spec matched nothing, so those two are the only ones a second rerun runs.
expected=$(printf 'alone-pass\tpasses alone\nalone-fail\tfails, with a comma\nalone-fail\thangs: past its limit\n'
    printf 'alone-fail\tkilled: before its limit')
[[ $(cat "$TMP/empty.tsv") == "$expected" ]] && ok || bad "case log after the fake reruns: $(cat "$TMP/empty.tsv")"
bash "$RERUN" "$TMP/fake_tests" "$TMP/empty.tsv" "$TMP/fake2" 2 >"$TMP/fake2.out" 2>&1
[[ $(cut -f3 "$TMP/fake2/cases.tsv" | tr '\n' '|') == "matches nothing|no device: exits 77|" ]] && ok ||
    bad "second fake rerun: $(cat "$TMP/fake2/cases.tsv")"

# 4. Usage errors: exit 2, one line naming what to do.
expect 2 "usage" -- bash "$RERUN" "$UNIT"
expect 2 "not an executable" -- bash "$RERUN" "$TMP/missing" "$TMP/log.tsv" "$TMP/x"

# 5. bench/run_cases_left.sh after a run cut inside its second case, the first passed: the cases after the cut
# one run in one process, appending to the log; the cut one is left to run alone (it may be what hangs), and
# a case with a fail verdict is not run again there.
LEFT=$SRC/bench/run_cases_left.sh
cp "$TMP/cut.tsv" "$TMP/left.tsv"
bash "$LEFT" "$UNIT" "$TMP/left.tsv" "$TMP/left.spec" "$SPEC" >"$TMP/left.out" 2>&1
rc=$?
((rc == 0)) && ok || bad "run_cases_left after a cut run exited $rc: $(tail -5 "$TMP/left.out")"
grep -qF "stopped inside \"${names[1]}\"" "$TMP/left.out" && ok || bad "stopped-inside case not named: $(head -3 "$TMP/left.out")"
grep -qF "$((${#names[@]} - 2)) of ${#names[@]} cases have no verdict in $TMP/left.tsv; 1 started without one" "$TMP/left.out" && ok ||
    bad "count line: $(head -3 "$TMP/left.out")"
grep -qE "in $((${#names[@]} - 2)) test cases" "$TMP/left.out" && ok || bad "not one run of the cases left: $(tail -3 "$TMP/left.out")"
[[ $(wc -l <"$TMP/left.spec") == $((${#names[@]} - 2)) ]] && ok || bad "spec file: $(cat "$TMP/left.spec")"
expected=$(cat "$TMP/cut.tsv"; for ((i = 2; i < ${#names[@]}; i++)); do printf 'start\t%s\npass\t%s\n' "${names[i]}" "${names[i]}"; done)
[[ $(cat "$TMP/left.tsv") == "$expected" ]] && ok || bad "appended case log differs: $(cat "$TMP/left.tsv")"
# Now only the cut case is without a verdict: nothing to run in one process (77), one case to settle alone;
# rerun_cases_apart runs it and nothing else.
bash "$LEFT" "$UNIT" "$TMP/left.tsv" "$TMP/left.spec" "$SPEC" >"$TMP/none.out" 2>&1
rc=$?
((rc == 77)) && ok || bad "run_cases_left with only the cut case left exited $rc, wanted 77: $(cat "$TMP/none.out")"
grep -qF "0 of ${#names[@]} cases have no verdict" "$TMP/none.out" && ok || bad "count line: $(cat "$TMP/none.out")"
[[ $(catch_cases_to_settle "$TMP/left.tsv") == 1 ]] && ok || bad "cases to settle: $(catch_cases_to_settle "$TMP/left.tsv")"
bash "$RERUN" "$UNIT" "$TMP/left.tsv" "$TMP/left_apart" 60 "$SPEC" >"$TMP/left_apart.out" 2>&1 && ok || bad "rerun of the cut case: $(cat "$TMP/left_apart.out")"
[[ $(cut -f1,3 "$TMP/left_apart/cases.tsv") == "$(printf 'PASS\t%s' "${names[1]}")" ]] && ok ||
    bad "wanted the cut case alone: $(cat "$TMP/left_apart/cases.tsv")"
# A case failed in a shared process is not run there again, but is not settled: it runs alone; the one never
# reached runs in the one process.
printf 'start\t%s\nfail\t%s\n' "${names[0]}" "${names[0]}" >"$TMP/failed.tsv"
for ((i = 1; i < ${#names[@]} - 1; i++)); do printf 'start\t%s\npass\t%s\n' "${names[i]}" "${names[i]}"; done >>"$TMP/failed.tsv"
bash "$LEFT" "$UNIT" "$TMP/failed.tsv" "$TMP/failed.spec" "$SPEC" >"$TMP/failed.out" 2>&1
rc=$?
((rc == 0)) && ok || bad "run_cases_left of the last case exited $rc: $(tail -3 "$TMP/failed.out")"
[[ $(sed 's/\\\(.\)/\1/g' "$TMP/failed.spec") == "${names[-1]}" ]] && ok || bad "wanted only the last case: $(cat "$TMP/failed.spec")"
catch_case_ended "$TMP/failed.tsv" "${names[0]}" && ! catch_case_settled "$TMP/failed.tsv" "${names[0]}" && ok ||
    bad "a fail in a shared process: ended $(catch_case_ended "$TMP/failed.tsv" "${names[0]}"; echo $?), settled $(catch_case_settled "$TMP/failed.tsv" "${names[0]}"; echo $?)"
[[ $(catch_cases_to_settle "$TMP/failed.tsv") == 1 ]] && ok || bad "cases to settle: $(catch_cases_to_settle "$TMP/failed.tsv")"
# No case log (no earlier run on this machine): 77, saying so; usage errors: 2.
bash "$LEFT" "$UNIT" "$TMP/no_such_log.tsv" "$TMP/x.spec" >"$TMP/nolog.out" 2>&1
rc=$?
((rc == 77)) && grep -q "no case log" "$TMP/nolog.out" && ok || bad "without a case log: exit $rc, $(cat "$TMP/nolog.out")"
expect 2 "usage" -- bash "$LEFT" "$UNIT" "$TMP/left.tsv"
expect 2 "not an executable" -- bash "$LEFT" "$TMP/missing" "$TMP/left.tsv" "$TMP/x.spec"

# 6. A real time limit: a SIGTERM inside a running case (the unit suite's longest, tens of seconds) logs it
# "cut", not a verdict (Catch2 reports the signal as a failed assertion), so it counts as where the run
# stopped and run_cases_left would run it again. (--foreground: one SIGTERM, to the test alone. A timeout of
# its own process group signals the group too; a second SIGTERM, after Catch2 has put the default action
# back, may end the process before any line: no verdict either way.)
LONG="im2col convolution matches direct sums at every conv shape of the committed models"
RESNEST_TEST_CASE_LOG=$TMP/sig.tsv timeout --foreground -s TERM 2 "$UNIT" "$LONG" >"$TMP/sig.out" 2>&1
rc=$?
((rc == 124)) && ok || bad "the cut run exited $rc, wanted 124: $(tail -3 "$TMP/sig.out")"
[[ $(cat "$TMP/sig.tsv") == "$(printf 'start\t%s\ncut\t%s' "$LONG" "$LONG")" ]] && ok ||
    bad "case log after SIGTERM: $(cat "$TMP/sig.tsv")"
# shellcheck source=../../bench/catch_cases.sh
source "$SRC/bench/catch_cases.sh"
catch_case_ended "$TMP/sig.tsv" "$LONG" && bad "a case cut by SIGTERM counts as having a verdict" || ok
[[ $(catch_case_stopped_inside "$TMP/sig.tsv") == "$LONG" ]] && ok ||
    bad "the cut case is not where the run stopped: '$(catch_case_stopped_inside "$TMP/sig.tsv")'"
# 7. A time limit around run_cases_left (device_check's tests_rest stage, timeout -k) reaches the test
# process itself: one that ignores SIGTERM (stuck in a driver call) is killed when the limit's SIGKILL comes,
# not left running after timeout has returned (as it was when a shell between them died on the SIGTERM).
# 8. The same around rerun_cases_apart (device_check's *_apart stage), whose cases run under a timeout of
# their own: the stage's SIGTERM reaches the case's timeout too, and the script ends only after the case
# has, so the stage's SIGKILL still finds it (the case's own limit, 30 s here, is far off).
cat >"$TMP/stuck_tests" <<'STUCK'
#!/usr/bin/env bash
if [[ $1 == --list-test-names-only ]]; then echo "never ends"; exit 0; fi
echo $$ >"$STUCK_PID"
trap '' TERM
exec sleep 30
STUCK
chmod +x "$TMP/stuck_tests"
alive() {  # alive PID: a process that is neither gone nor a zombie (killed, not yet reaped by its new parent)
    local state
    state=$(ps -o stat= -p "$1" 2>/dev/null) && [[ -n $state && $state != Z* ]]
}
stuck_killed() {  # stuck_killed WHAT SCRIPT ARGS...: SCRIPT under a 1 s limit (SIGKILL 2 s later)
    local what=$1 t0=$SECONDS rc stuck
    shift
    rm -f "$TMP/stuck.pid"
    : >"$TMP/stuck.tsv"
    STUCK_PID=$TMP/stuck.pid timeout -k 2 1 bash "$@" >"$TMP/stuck.out" 2>&1
    rc=$?  # 137: timeout signals its own process group too, so the SIGKILL ends timeout itself as well
    stuck=$(cat "$TMP/stuck.pid" 2>/dev/null)
    ((rc == 137)) && ok || bad "$what: exited $rc, wanted 137 (killed after the limit): $(cat "$TMP/stuck.out")"
    sleep 0.5
    if [[ -n $stuck ]] && alive "$stuck"; then
        bad "$what: the stuck test process $stuck outlived the time limit"
        kill -KILL "$stuck"
    else
        ok
    fi
    ((SECONDS - t0 < 20)) && ok || bad "$what: took $((SECONDS - t0)) s"
}
stuck_killed "run_cases_left" "$LEFT" "$TMP/stuck_tests" "$TMP/stuck.tsv" "$TMP/stuck.spec"
stuck_killed "rerun_cases_apart" "$RERUN" "$TMP/stuck_tests" "$TMP/stuck.tsv" "$TMP/stuck_apart" 30
expect 2 "not a whole number of seconds" -- bash "$RERUN" "$UNIT" "$TMP/log.tsv" "$TMP/x" 1.5

# 9. exit_verdict (catch_cases.sh), as device_check's stages read an exit status: RC SECONDS_TAKEN LIMIT_S.
for want in "0 3 10 PASS" "77 0 10 SKIP" "124 10 10 TIMEOUT" "137 20 10 TIMEOUT" "137 4 10 KILLED(137)" \
    "1 3 10 FAIL(1)" "143 3 10 FAIL(143)" "x 3 10 FAIL(x)" "137 4 1.5 KILLED(137)"; do
    read -r rc took limit verdict <<<"$want"
    got=$(exit_verdict "$rc" "$took" "$limit")
    [[ $got == "$verdict" ]] && ok || bad "exit_verdict $rc $took $limit: $got, wanted $verdict"
done
finish
