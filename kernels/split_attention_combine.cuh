// split_attention_combine.cuh: split attention, step 3 of 3: the radix splits weighted by their attention
// and summed, in one pass over U that writes the next conv's input; optionally with the average pool that
// follows the block (ResNeSt's avd layer placed last) applied in the same pass.
#pragma once
#include <cuda_runtime.h>

#include "kernel_stream.h"
#include "pool2d_nhwc.cuh"
#include "split_attention_rows.cuh"
#include "weight_slice.h"

namespace resnest {

constexpr int kMaxCombineRadix = 8;  // the radix the pooled variant takes at most

// u: R splits of (N, H, W, C), interleaved in one (N, H, W, R*C) tensor or apart (split_attention_rows.cuh);
// attn (N, R*C) float, radix-major -> y (N, H, W, C):
//   y[n, p, c] = sum_r attn[n, r*C + c] * u_r[n, p, c].
// 16-byte vectors along C where C allows them and every split and y are 16-byte aligned, else one channel
// a thread.
// Throws (naming the kernel) for a radix outside 1..kSplitAttentionMaxRadix.
// next: the filters of the convolutions after it that a library runs (conv3, and the next block's conv1),
// which the threads ask L2 for in 4 KiB pieces before they wait on the kernel before them (nothing with
// stream.prefetch_weights off).
template <typename T>
void split_attention_weighted_sum(const RadixRows<T>& u, const float* attn, T* y, int n, int hw, int radix, int c,
                                  KernelStream stream, const L2Prefetch& next = {});

// The same, then average pooling by `pool` (pool.channels = C, in_h/in_w = U's, out_h/out_w = y's):
//   y[n, oy, ox, c] = avg over the window of sum_r attn * u_r.
template <typename T>
void split_attention_weighted_sum_avg_pool(const RadixRows<T>& u, const float* attn, T* y, int radix,
                                           const Pool2dShape& pool, KernelStream stream, const L2Prefetch& next = {});

}  // namespace resnest
