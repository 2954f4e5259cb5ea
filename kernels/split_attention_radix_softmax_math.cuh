// split_attention_radix_softmax_math.cuh: the last step of every form of split attention's gate, one
// channel's R logits -> its R gates: a softmax over the splits (the max subtracted, expf, one division), a
// sigmoid when R = 1. Device code only: included by the gate kernels' .cu files (split_attention_gate.cu,
// split_attention_gate_rows.cu, split_attention_radix_softmax.cu), so every form computes the same bits.
#pragma once
#include <cuda_runtime.h>

#include "split_attention_gate.cuh"

namespace resnest {

// v[0..R): logits in, gates out; R in 1..kSplitAttentionMaxRadix.
__device__ __forceinline__ void radix_softmax_in_registers(float (&v)[kSplitAttentionMaxRadix], int R) {
    if (R == 1) {
        v[0] = 1.0f / (1.0f + expf(-v[0]));
        return;
    }
    float mx = v[0];
#pragma unroll
    for (int r = 1; r < kSplitAttentionMaxRadix; r++)
        if (r < R) mx = fmaxf(mx, v[r]);
    float total = 0.0f;
#pragma unroll
    for (int r = 0; r < kSplitAttentionMaxRadix; r++)
        if (r < R) total += (v[r] = expf(v[r] - mx));
#pragma unroll
    for (int r = 0; r < kSplitAttentionMaxRadix; r++)
        if (r < R) v[r] = v[r] / total;
}

}  // namespace resnest
