// split_attention_combine.cuh: split attention, step 3 of 3: the radix splits weighted by their attention
// and summed, in one pass over U that writes the next conv's input; optionally with the average pool that
// follows the block (ResNeSt's avd layer placed last) applied in the same pass.
#pragma once
#include <cuda_runtime.h>

#include "kernel_stream.h"
#include "pool2d_nhwc.cuh"

namespace resnest {

constexpr int kMaxCombineRadix = 8;  // the radix the pooled variant takes at most

// u (N, H, W, R*C) radix-major, attn (N, R*C) float -> y (N, H, W, C):
//   y[n, p, c] = sum_r attn[n, r*C + c] * u[n, p, r*C + c].
template <typename T>
void split_attention_weighted_sum(const T* u, const float* attn, T* y, int n, int hw, int radix, int c,
                                  KernelStream stream);

// The same, then average pooling by `pool` (pool.channels = C, in_h/in_w = U's, out_h/out_w = y's):
//   y[n, oy, ox, c] = avg over the window of sum_r attn * u.
template <typename T>
void split_attention_weighted_sum_avg_pool(const T* u, const float* attn, T* y, int radix, const Pool2dShape& pool,
                                           KernelStream stream);

}  // namespace resnest
