// main.cpp: Catch2 entry point for the unit, bad-input and fixture suites (one executable, tagged cases).
// Every test case must assert something: a case that runs no assertion fails (Catch2's NoAssertions
// warning, turned on here because the command line takes one --warn, which CTest spends on NoTests).
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

int main(int argc, char* argv[]) {
    Catch::Session session;
    const int rc = session.applyCommandLine(argc, argv);
    if (rc != 0) return rc;
    Catch::ConfigData& config = session.configData();
    config.warnings = static_cast<Catch::WarnAbout::What>(config.warnings | Catch::WarnAbout::NoAssertions);
    return session.run();
}
