// fuzz_npy.cpp: libFuzzer target for the .npy reader (runtime/npy.cpp). The input is written to an
// in-memory file and read through npy_read. Any input must end in an array or a resnest::Error; an array
// that loads has exactly shape-product values and no more than the tensor limit.
//
// Build and run (see tests/fuzz/README.md):
//   bash tests/fuzz/run_fuzzers.sh 600
//   build-fuzz/tests/fuzz/fuzz_npy -dict=tests/fuzz/npy.dict -max_len=4096 tests/fuzz/corpus/npy
#include <cstddef>  // size_t
#include <cstdint>  // uint8_t, uint64_t

#include "fuzz_file.h"      // fuzz::MemoryFile
#include "npy.h"            // resnest::npy_read
#include "resnest/error.h"  // resnest::Error

namespace {

void check(bool ok) {
    if (!ok) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static fuzz::MemoryFile file;
    const std::string& path = file.write(data, size);
    try {
        resnest::NpyArray a = resnest::npy_read(path);
        uint64_t count = 1;
        for (int64_t d : a.shape) {
            check(d >= 0);
            count *= static_cast<uint64_t>(d);
        }
        check(a.data.size() == count);
        check(count * sizeof(float) <= size);
    } catch (const resnest::Error&) {
        // a clean refusal
    }
    return 0;
}
