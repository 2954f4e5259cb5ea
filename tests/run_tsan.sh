#!/usr/bin/env bash
# run_tsan.sh: the unit suite under ThreadSanitizer, on demand (not part of CI: the instrumented build and
# the whole suite take about 30 minutes on 2 cores). The host code that runs threads: contexts on one engine
# from several threads, the CPU backend's thread pool (parallel_for), CUDA's initialisation on a thread of
# its own beside a load. A race report fails the run.
#
#   bash tests/run_tsan.sh            # the cases that run threads (names matching *thread*), ~10 min build
#   bash tests/run_tsan.sh all        # every unit case but the full-model fixtures (they need CTest's setup)
#   bash tests/run_tsan.sh "<spec>"   # a Catch2 test spec
#   TSAN_BUILD=dir                    # the build folder (default build-tsan)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${TSAN_BUILD:-build-tsan}
SPEC=${1:-"*thread*"}
[[ $SPEC == all ]] && SPEC="~[fixtures-full]"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRESNEST_TSAN=ON ${RESNEST_CMAKE_ARGS:-} > /dev/null
cmake --build "$BUILD" -j"$(nproc)" --target resnest_tests
# halt_on_error: the first report ends the run with exitcode 66, so a race can never pass as a green run.
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:exitcode=66:second_deadlock_stack=1}
start=$SECONDS
# Address-space randomisation off for the run (setarch -R): gcc 12's ThreadSanitizer aborts with "unexpected
# memory mapping" on kernels that randomise with more bits (vm.mmap_rnd_bits=32). A spec that matches no case
# fails (--warn NoTests) rather than passing empty.
RUN=()
command -v setarch > /dev/null && RUN=(setarch "$(uname -m)" -R)
status=0
"${RUN[@]}" "$BUILD/tests/resnest_tests" "$SPEC" --warn NoTests || status=$?
echo "run_tsan: '$SPEC' under ThreadSanitizer: exit $status in $((SECONDS - start)) s"
exit "$status"
