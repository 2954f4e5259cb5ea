// catch_session.h: runs Catch2 with the command line given, and with its NoAssertions warning on, so a test
// case that runs no assertion fails: Catch2 v2's command line takes one --warn, which CTest spends on
// NoTests. Both test executables' main (tests/unit/main.cpp, tests/cuda/cuda_test_main.cpp) end here.
#pragma once
// Catch2's own implementation compiles here (CATCH_CONFIG_RUNNER): GCC 12 warns inside libstdc++'s regex,
// which it uses, under the sanitizer build's optimisation (a false -Wmaybe-uninitialized); not our code.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <catch2/catch.hpp>
#pragma GCC diagnostic pop

inline int run_catch_session_asserting(int argc, char** argv) {
    Catch::Session session;
    const int rc = session.applyCommandLine(argc, argv);
    if (rc != 0) return rc;
    Catch::ConfigData& config = session.configData();
    config.warnings = static_cast<Catch::WarnAbout::What>(config.warnings | Catch::WarnAbout::NoAssertions);
    return session.run();
}
