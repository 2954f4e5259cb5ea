// catch_session.h: runs Catch2 with the command line given, and with its NoAssertions warning on, so a test
// case that runs no assertion fails: Catch2 v2's command line takes one --warn, which CTest spends on
// NoTests. Both test executables' main (tests/unit/main.cpp, tests/cuda/cuda_test_main.cpp) end here. It also
// registers the case log listener (RESNEST_TEST_CASE_LOG, below).
#pragma once
// Catch2's own implementation compiles here (CATCH_CONFIG_RUNNER): GCC 12 warns inside libstdc++'s regex,
// which it uses, under the sanitizer build's optimisation (a false -Wmaybe-uninitialized); not our code.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <catch2/catch.hpp>
#pragma GCC diagnostic pop

#include <cstdio>
#include <cstdlib>
#include <string>

// RESNEST_TEST_CASE_LOG=FILE: each test case appends "start<TAB>name" to FILE as it begins and "pass<TAB>name"
// or "fail<TAB>name" as it ends, the file closed after each line. A run cut short (a device fault, a signal,
// a time limit) still says which cases passed and which one was running: bench/rerun_cases_apart.sh reruns
// the others one process each. A case stopped from outside (SIGTERM, as a time limit sends, or SIGINT) ends
// with "cut<TAB>name", not a verdict: Catch2 reports the signal as the case's failed assertion, but the case
// did not fail, and bench/run_cases_left.sh runs it again.
class CaseLogListener : public Catch::TestEventListenerBase {
  public:
    using TestEventListenerBase::TestEventListenerBase;
    void testCaseStarting(Catch::TestCaseInfo const& info) override {
        TestEventListenerBase::testCaseStarting(info);
        cut_ = false;
        append("start", info.name);
    }
    // Catch2's signal handler reports the signal as a FatalErrorCondition whose message names it
    // ("SIGTERM - Termination request signal"); listeners get no fatalErrorEncountered call.
    bool assertionEnded(Catch::AssertionStats const& stats) override {
        const Catch::AssertionResult& r = stats.assertionResult;
        if (r.getResultType() == Catch::ResultWas::FatalErrorCondition) {
            const std::string message = r.getMessage();
            cut_ = message.rfind("SIGTERM", 0) == 0 || message.rfind("SIGINT", 0) == 0;
        }
        return TestEventListenerBase::assertionEnded(stats);
    }
    void testCaseEnded(Catch::TestCaseStats const& stats) override {
        append(cut_ ? "cut" : stats.totals.assertions.failed > 0 ? "fail" : "pass", stats.testInfo.name);
        TestEventListenerBase::testCaseEnded(stats);
    }

  private:
    bool cut_ = false;

    static void append(const char* verdict, const std::string& name) {
        const char* path = std::getenv("RESNEST_TEST_CASE_LOG");
        if (path == nullptr || *path == '\0') return;
        FILE* f = std::fopen(path, "a");
        if (f == nullptr) {
            std::fprintf(stderr, "RESNEST_TEST_CASE_LOG: cannot append to %s; set it to a writable file\n", path);
            return;
        }
        std::fprintf(f, "%s\t%s\n", verdict, name.c_str());
        std::fclose(f);
    }
};
CATCH_REGISTER_LISTENER(CaseLogListener)

inline int run_catch_session_asserting(int argc, char** argv) {
    Catch::Session session;
    const int rc = session.applyCommandLine(argc, argv);
    if (rc != 0) return rc;
    Catch::ConfigData& config = session.configData();
    config.warnings = static_cast<Catch::WarnAbout::What>(config.warnings | Catch::WarnAbout::NoAssertions);
    // Catch2 exits with the number of failed assertions (at most 255): 77 failures would read as skipped
    // (CTest's SKIP_RETURN_CODE, device_check.sh) and 124 or 137 as cut by a time limit (timeout's codes).
    const int failed = session.run();
    return failed == 77 || failed == 124 || failed == 137 ? 1 : failed;
}
