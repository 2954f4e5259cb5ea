// split_attention_pool.cuh: split attention, step 1 of 3: the radix splits summed and averaged over space
// in one pass over U.
#pragma once
#include <cuda_runtime.h>

namespace resnest {

// u (N, HW, R*C), radix-major channels (split r holds channels r*C .. r*C + C - 1)
// -> gap (N, C) float: gap[n, c] = mean_p sum_r u[n, p, r*C + c].
template <typename T>
void split_attention_radix_sum_pool(const T* u, float* gap, int n, int hw, int radix, int c, cudaStream_t stream);

}  // namespace resnest
