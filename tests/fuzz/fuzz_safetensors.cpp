// fuzz_safetensors.cpp: libFuzzer target for the safetensors reader (runtime/safetensors.cpp). The input
// is written to an in-memory file and opened through SafetensorsFile::open, so the real open/mmap path
// runs. Any input must end in a validated file or a resnest::Error. A file that opens must keep the
// format's promises: every tensor's bytes = element count x dtype size, spans inside the mapping, no two
// spans overlapping, and every byte of the data block owned by exactly one tensor.
//
// Build and run (see tests/fuzz/README.md):
//   bash tests/fuzz/run_fuzzers.sh 600
//   build-fuzz/tests/fuzz/fuzz_safetensors -dict=tests/fuzz/safetensors.dict -max_len=65536 \
//       tests/fuzz/corpus/safetensors
#include <algorithm>  // std::sort
#include <cstddef>    // size_t
#include <cstdint>    // uint8_t, uint64_t
#include <utility>    // std::pair
#include <vector>     // std::vector

#include "dtype.h"          // resnest::dtype_size
#include "fuzz_file.h"      // fuzz::MemoryFile
#include "resnest/error.h"  // resnest::Error
#include "safetensors.h"    // resnest::SafetensorsFile

namespace {

void check(bool ok) {
    if (!ok) __builtin_trap();
}

void check_file(const resnest::SafetensorsFile& file, size_t file_bytes) {
    std::vector<std::pair<const uint8_t*, uint64_t>> spans;
    uint64_t total = 0;
    unsigned sum = 0;
    for (const resnest::SafetensorsTensor& t : file.tensors()) {
        check(file.find(t.name) == &t);
        uint64_t count = 1;
        for (int64_t d : t.shape) {
            check(d >= 0);
            count *= static_cast<uint64_t>(d);
        }
        check(t.nbytes == count * resnest::dtype_size(t.dtype));
        check(t.nbytes <= file_bytes);
        if (t.nbytes) {
            sum += t.data[0] + t.data[t.nbytes - 1];  // touches both ends: a bad span faults here
            spans.push_back({t.data, t.nbytes});
        }
        total += t.nbytes;
    }
    std::sort(spans.begin(), spans.end());
    for (size_t i = 1; i < spans.size(); i++) check(spans[i - 1].first + spans[i - 1].second == spans[i].first);
    check(total < file_bytes);  // data block = file - 8 - header, and the header is not empty
    if (!spans.empty()) {
        // The data block is the tail of the file: the last span ends exactly at the file's end.
        check(spans.back().first + spans.back().second == spans.front().first + total);
    }
    (void)sum;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static fuzz::MemoryFile file;
    const std::string& path = file.write(data, size);
    try {
        auto st = resnest::SafetensorsFile::open(path);
        check_file(*st, size);
    } catch (const resnest::Error&) {
        // a clean refusal
    }
    return 0;
}
