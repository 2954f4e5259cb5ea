// test_catalog.cpp: the unit suite's own test case names.
// - CTest gets one entry per test case (catch_discover_tests), and a ';' in a name splits that entry in two
//   whose filters match nothing: the case would never run under CTest (tests/CMakeLists.txt's --warn NoTests
//   turns such an entry into a failure).
// - Catch2 v2's console reporter wraps a failing case's name with its continuation lines indented to just
//   after the name's first ": ", inside a 79-column width: with that ": " at index 77 or later it aborts
//   (an assertion in its text wrapping), at 76 it loops for ever. Either way a failure would end the run
//   without its report, or hang CI. Names keep their first ": " well before that.
#include <catch2/catch.hpp>

#include <string>

namespace {

const std::vector<Catch::TestCase>& all_test_cases() {
    return Catch::getRegistryHub().getTestCaseRegistry().getAllTests();
}

}  // namespace

TEST_CASE("no unit test case name holds a semicolon, which would split its CTest entry", "[catalog]") {
    REQUIRE(all_test_cases().size() > 100);
    for (const Catch::TestCase& t : all_test_cases()) {
        INFO(t.name);
        CHECK(t.name.find(';') == std::string::npos);
    }
}

TEST_CASE("no unit test case name has its first colon and space where the failure report cannot wrap it",
          "[catalog]") {
    constexpr size_t kLastColonIndex = 60;  // Catch2 v2 fails from 76 on; a margin for its own prefixes
    REQUIRE(all_test_cases().size() > 100);
    for (const Catch::TestCase& t : all_test_cases()) {
        INFO(t.name);
        const size_t colon = t.name.find(": ");
        CHECK((colon == std::string::npos || colon <= kLastColonIndex));
    }
}
