// test_catalog.cpp: the unit suite's own test case names. CTest gets one entry per test case
// (catch_discover_tests), and a ';' in a name splits that entry in two whose filters match nothing: the case
// would never run under CTest (tests/CMakeLists.txt's --warn NoTests turns such an entry into a failure).
#include <catch2/catch.hpp>

#include <string>

TEST_CASE("no unit test case name holds a semicolon, which would split its CTest entry", "[catalog]") {
    const std::vector<Catch::TestCase>& all = Catch::getRegistryHub().getTestCaseRegistry().getAllTests();
    REQUIRE(all.size() > 100);
    for (const Catch::TestCase& t : all) {
        INFO(t.name);
        CHECK(t.name.find(';') == std::string::npos);
    }
}
