// main.cpp: Catch2 entry point for the unit, bad-input and fixture suites (one executable, tagged cases).
// Every test case must assert something: one that runs no assertion fails (catch_session.h).
#define CATCH_CONFIG_RUNNER
#include "../catch_session.h"

int main(int argc, char* argv[]) { return run_catch_session_asserting(argc, argv); }
