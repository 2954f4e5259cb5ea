// main.cpp: Catch2 entry point for the unit, bad-input and fixture suites (one executable, tagged cases).
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
