// split_attention_gate.cuh: split attention, step 2 of 3: per image, fc1 (BN folded in) -> ReLU -> fc2 ->
// radix softmax over the splits (sigmoid when radix is 1), with the cardinality transpose of spec §3.
#pragma once
#include <cuda_runtime.h>

#include "kernel_stream.h"
#include "split_attention_rows.cuh"  // kSplitAttentionMaxRadix

namespace resnest {

struct SplitAttentionGateShape {
    int n;            // images
    int radix;        // R, 1..kSplitAttentionMaxRadix
    int cardinality;  // K
    int channels;     // C: the op's output channels; gk = C / K
    int inter;        // fc1's outputs; ik = inter / K
    int hw = 1;       // positions the pool summed over (the mean's divisor)
    int chunks = 1;   // chunks of the pool's partial sums per image (split_attention_pool_plan.h)
};

// Shared memory the kernel needs for a shape, bytes (the caller checks it against the device's limit).
size_t split_attention_gate_smem_bytes(const SplitAttentionGateShape& s);

// Throws, naming `kernel`, where `bytes` of dynamic shared memory exceed the 48 KiB a kernel may take without
// opting in (the gate kernels do not opt in).
void split_attention_gate_check_shared_memory(const char* kernel, size_t bytes, const SplitAttentionGateShape& s);

// partial (N, chunks, C) float: the pool's chunk sums, added in chunk order and divided by hw; fc1_weight (inter, gk), fc1_bias (inter): BN already folded in; fc2_weight (R*C, ik),
// fc2_bias (R*C), rows cardinal-major (k*(R*gk) + r*gk + c').
// -> attn (N, R*C) float, radix-major like U: attn[n, r*C + k*gk + c'] = softmax_r(z[k, r, c']).
void split_attention_gate_block_per_image(const float* partial, const float* fc1_weight, const float* fc1_bias,
                                          const float* fc2_weight, const float* fc2_bias, float* attn,
                                          const SplitAttentionGateShape& s, KernelStream stream);

}  // namespace resnest
