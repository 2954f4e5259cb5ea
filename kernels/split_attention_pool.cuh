// split_attention_pool.cuh: split attention, step 1 of 3: the radix splits summed over space in one pass
// over U, per chunk of positions (split_attention_pool_plan.h); the gate adds the chunks and divides.
#pragma once
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <type_traits>

#include "kernel_stream.h"
#include "split_attention_pool_plan.h"
#include "split_attention_rows.cuh"

namespace resnest {

// Whether the launcher loads channel pairs (half2): fp16 storage with an even channel count.
template <typename T>
inline bool split_attention_pool_paired(int c) {
    return std::is_same<T, __half>::value && c % 2 == 0;
}

// The chunk count the backend launches with for n images (split_attention_pool_plan.h).
template <typename T>
inline int split_attention_pool_chunks_for(int n, int hw, int c) {
    return split_attention_pool_chunks(n, hw, c, split_attention_pool_paired<T>(c));
}

// u: R splits of (N, HW, C), interleaved in one (N, HW, R*C) tensor or apart (split_attention_rows.cuh)
// -> partial (N, chunks, C) float: partial[n, k, c] = sum over chunk k's positions p of sum_r u_r[n, p, c].
// Channel pairs (split_attention_pool_paired) load as half2 where every split is 4-byte aligned, else one
// channel at a time. Throws (naming the kernel) for a radix outside 1..kSplitAttentionMaxRadix or chunks outside
// 1..kPoolMaxChunks.
template <typename T>
void split_attention_radix_sum_pool(const RadixRows<T>& u, float* partial, int n, int hw, int radix, int c,
                                    int chunks, KernelStream stream);

}  // namespace resnest
