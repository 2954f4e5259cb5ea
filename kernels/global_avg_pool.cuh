// global_avg_pool.cuh: the mean over space of an NHWC tensor, per image and channel.
#pragma once
#include <cuda_runtime.h>

#include "kernel_stream.h"

namespace resnest {

// x (N, HW, C) -> y (N, C), float accumulation.
template <typename T>
void global_avg_pool_nhwc(const T* x, T* y, int n, int hw, int c, KernelStream stream);

}  // namespace resnest
