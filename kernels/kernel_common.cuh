// kernel_common.cuh: what every kernel in kernels/ shares: element conversion between the storage types
// (float, __half) and float arithmetic, and the launch-error check the launchers end with.
//
// Activations are NHWC in the storage type T (float for fp32/tf32, __half for fp16); all arithmetic is
// float. Every launcher is a plain function taking device pointers and a stream; it throws resnest::Error
// (naming the kernel) when the launch fails.
#pragma once
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <string>

namespace resnest {

__device__ __forceinline__ float load_as_float(const float* p) { return *p; }
__device__ __forceinline__ float load_as_float(const __half* p) { return __half2float(*p); }
__device__ __forceinline__ void store_from_float(float* p, float v) { *p = v; }
__device__ __forceinline__ void store_from_float(__half* p, float v) { *p = __float2half_rn(v); }

// Throws resnest::Error naming `kernel` when the last launch failed (bad configuration, no device).
void check_kernel_launch(const char* kernel);

inline int ceil_div(long long a, long long b) { return (int)((a + b - 1) / b); }

}  // namespace resnest
