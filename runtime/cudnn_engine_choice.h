// cudnn_engine_choice.h: a cuDNN graph engine configuration as the algorithm cache keeps it: the engine's
// global index and its knob settings (type, value), as little-endian int64 words in hex:
//   [format 1] [global index] [knob count k] [type 0] [value 0] ... [type k-1] [value k-1]
// cuDNN rebuilds the same configuration from these for the same operation graph and cuDNN version (both in
// the cache key), so a cached start skips the heuristic query (runtime/cuda/cuda_graph_conv.cpp). Host code
// only (no cuDNN types), so it is tested on any machine.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace resnest {

struct CudnnEngineChoice {
    int64_t global_index = -1;                        // CUDNN_ATTR_ENGINE_GLOBAL_INDEX
    std::vector<std::pair<int64_t, int64_t>> knobs;   // (cudnnBackendKnobType_t, CUDNN_ATTR_KNOB_CHOICE_KNOB_VALUE)
};

constexpr int kMaxCudnnKnobs = 64;  // cuDNN 9.19 has 44 knob types

// The hex the cache stores (at most (3 + 2 * kMaxCudnnKnobs) * 16 digits).
std::string encode_cudnn_engine_choice(const CudnnEngineChoice& c);
// False, leaving *out alone, unless `hex` is exactly such a record: format 1, a non-negative index, at most
// kMaxCudnnKnobs knobs of types 0..1023, and nothing after them.
bool decode_cudnn_engine_choice(const std::string& hex, CudnnEngineChoice* out);

}  // namespace resnest
