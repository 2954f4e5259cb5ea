// global_avg_pool.cuh: the mean over space of an NHWC tensor, per image and channel.
#pragma once
#include <cuda_runtime.h>

#include "kernel_stream.h"
#include "weight_slice.h"

namespace resnest {

// x (N, HW, C) -> y (N, C), float accumulation. next: the weights of the library call after it (the
// classifier on cuBLAS), which its threads ask L2 for before they wait on the kernel before them (nothing with
// stream.prefetch_weights off).
template <typename T>
void global_avg_pool_nhwc(const T* x, T* y, int n, int hw, int c, KernelStream stream, const L2Prefetch& next = {});

}  // namespace resnest
