// split_attention_radix_softmax.cuh: the last step of split attention's gate when its two fc layers run as
// matrix products (runtime/cuda/cuda_gate_gemm.h, cardinality 1): fc2's logits (N, R*C), radix-major, become
// the gates in place, a softmax over the R splits of each channel (a sigmoid when R = 1).
#pragma once
#include <cuda_runtime.h>

#include "kernel_stream.h"

namespace resnest {

// attn (N, R*C) float, in place: attn[n, r*C + c] = softmax_r(attn[n, r*C + c]); sigmoid when radix is 1.
// radix at most kSplitAttentionMaxRadix (split_attention_rows.cuh).
void split_attention_radix_softmax_thread_per_channel(float* attn, int n, int radix, int channels,
                                                      KernelStream stream);

}  // namespace resnest
