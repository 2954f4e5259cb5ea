// cuda_test_main.cpp: the GPU test executable's entry point. Without a CUDA device it prints why and exits
// with 77, CTest's skip code (SKIP_RETURN_CODE), so a machine without a GPU lists the suite as skipped. First,
// on any machine, it refuses test case names whose first ": " comes after index 60 (Catch2 v2 aborts or
// hangs reporting a failure of such a case) or that hold a ';' (which would split a CTest entry, should the
// suite ever be discovered case by case): tests/unit/test_catalog.cpp checks the unit suite the same way. A
// case that asserts nothing fails.
#define CATCH_CONFIG_RUNNER
#include "../catch_session.h"

#include <cstdio>
#include <string>

#include "resnest/engine.h"

int main(int argc, char** argv) {
    int bad_names = 0;
    for (const Catch::TestCase& t : Catch::getRegistryHub().getTestCaseRegistry().getAllTests()) {
        const size_t colon = t.name.find(": ");
        if (colon != std::string::npos && colon > 60) {
            std::printf("resnest_cuda_tests: test case \"%s\" has its first \": \" at index %zu, past 60: "
                        "Catch2 cannot report its failure; rename it\n", t.name.c_str(), colon);
            bad_names++;
        }
        if (t.name.find(';') != std::string::npos) {
            std::printf("resnest_cuda_tests: test case \"%s\" holds a ';', which would split a CTest entry of "
                        "its own; rename it\n", t.name.c_str());
            bad_names++;
        }
    }
    if (bad_names) return 1;
    int devices = resnest::cuda_device_count();
    if (devices == 0) {
        std::printf("resnest_cuda_tests: no CUDA device on this machine: SKIPPED (exit 77)\n");
        return 77;
    }
    resnest::DeviceInfo d = resnest::cuda_device_info(0);
    std::printf("resnest_cuda_tests: %s (sm_%d%d), driver %d, cuDNN %d\n", d.name.c_str(), d.cc_major, d.cc_minor,
                d.driver_version, d.cudnn_version);
    return run_catch_session_asserting(argc, argv);  // a case that runs no assertion fails
}
