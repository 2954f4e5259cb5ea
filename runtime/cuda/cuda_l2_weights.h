// cuda_l2_weights.h: the model's weights kept in L2 across forward passes (RESNEST_L2_WEIGHTS). At batch 1
// a ResNeSt50 forward pass reads about 55 MB of fp16 weights against a few MB of activations, and an H100 or
// H200 has 50 MB of L2: replayed back to back, the weights are evicted by their own cyclic sweep and come
// from memory every pass. An access policy window over the device weight buffer on every kernel node of a
// batch size's CUDA graph (library kernels included) marks its hits persisting in the device's persisting
// carve-out (cudaLimitPersistingL2CacheSize, a setting of the whole device), so a share of the weights stays
// in L2 from one pass to the next. Where activations fill L2 (large batches) the carve-out may cost more
// than it saves: `auto` times the batch size's graph both ways and keeps the faster (cached), `on` always,
// `off` (the default until measured on a GPU) never.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <utility>

namespace resnest {

// The window over the weights and the carve-out it asks for: the window covers the weights up to the
// device's largest window; the carve-out is the window, up to the device's largest; hits persist with
// probability carve_out / window (the rest stream), so the persisting lines fit the carve-out.
struct L2WeightWindow {
    size_t carve_out_bytes = 0;
    size_t window_bytes = 0;  // 0: none (the device has no persisting L2 or no windows)
    float hit_ratio = 0.0f;
};
L2WeightWindow plan_l2_weight_window(size_t weights_bytes, size_t max_persisting_bytes, size_t max_window_bytes);

// RESNEST_L2_WEIGHTS's mode (cuda_engine.h, off_auto_on_from).
std::string l2_weights_mode_from(const char* value, std::string* warning);

// Puts the window (starting at `base`) on every kernel node of `graph`; returns how many. Throws
// resnest::Error naming the failing call.
int set_l2_window_on_kernel_nodes(cudaGraph_t graph, const void* base, const L2WeightWindow& w);

// The persisting carve-out (cudaLimitPersistingL2CacheSize) is a setting of the whole device, shared by every
// context with a window on it. The registry counts those contexts per device: the first records the limit
// it found, each raises the limit to what it wants (never lowers it), and the last one out resets the
// persisting lines and puts the found limit back. The device calls come in as functions, so the bookkeeping
// is host-tested (cuda_carve_out_calls: the CUDA runtime's, on the current device).
struct CarveOutCalls {
    std::function<cudaError_t(size_t*)> get_limit;
    std::function<cudaError_t(size_t)> set_limit;
    std::function<cudaError_t()> reset_persisting_lines;
};
CarveOutCalls cuda_carve_out_calls();

class CarveOutRegistry {
  public:
    // Registers a holder of `device`'s carve-out, raised to `wanted` where it is lower; *granted: the limit
    // the device then has (it may clamp). On an error nothing stays registered, and a limit this call raised
    // for the device's first holder is put back.
    cudaError_t acquire(int device, size_t wanted, const CarveOutCalls& calls, size_t* granted);
    // A holder is done: the device's last resets its persisting lines and puts the found limit back (their
    // errors ignored: no result depends on them). A device without holders is left alone.
    void release(int device, const CarveOutCalls& calls);
    int holders(int device) const;

  private:
    mutable std::mutex lock_;
    std::map<int, std::pair<size_t, int>> by_device_;  // device -> (limit found, holders)
};
// The process's registry; never destroyed, as contexts may be released after static destruction begins.
CarveOutRegistry& process_carve_out_registry();

}  // namespace resnest
