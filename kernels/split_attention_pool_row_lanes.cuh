// split_attention_pool_row_lanes.cuh: split attention, step 1 of 3 (split_attention_pool.cuh's contract,
// another algorithm): the radix splits summed over space, per chunk of positions, with 16-byte loads across
// the whole R*C channel row of a position. The channel-lanes pool (split_attention_pool.cu) loads 2 to 4
// bytes a thread and reached 1.8 TB/s on layer 1 at batch 128 (H200); this one loads 16.
#pragma once
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "kernel_stream.h"
#include "split_attention_pool_plan.h"
#include "split_attention_rows.cuh"

namespace resnest {

// Whether the row-lanes pool takes R*C channels of storage type T (split_attention_pool_plan.h), with the
// radix splits interleaved in one tensor or apart (then C must be whole 16-byte lanes too).
template <typename T>
inline bool split_attention_pool_row_lanes_fits_for(int radix, int c, bool splits_apart = false) {
    return split_attention_pool_row_lanes_fits(radix, c, 16 / (int)sizeof(T), splits_apart);
}

// u: R splits of (N, HW, C), interleaved in one (N, HW, R*C) tensor or apart (split_attention_rows.cuh),
// 16-byte aligned -> partial (N, chunks, C) float, as split_attention_radix_sum_pool:
//   partial[n, k, c] = sum over chunk k's positions p of sum_r u_r[n, p, c].
// Throws (naming the kernel) where the shape does not fit (split_attention_pool_row_lanes_fits_for, apart
// when u is not one interleaved tensor), a split it loads from is not 16-byte aligned, or chunks is outside
// 1..kPoolMaxChunks.
template <typename T>
void split_attention_radix_sum_pool_row_lanes(const RadixRows<T>& u, float* partial, int n, int hw, int radix, int c,
                                              int chunks, KernelStream stream);

}  // namespace resnest
