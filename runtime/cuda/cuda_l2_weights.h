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
#include <string>

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

}  // namespace resnest
