// im2col_nhwc.cuh: gathers a convolution's input windows into the im2col matrix, so that the convolution is
// one matrix product (runtime/conv_as_gemm.h): x (N, H, W, C) T -> cols (N*OH*OW, KH*KW*C) T, one row per
// output position, columns in (kh, kw, c) order, or group-major (g, kh, kw, c') when s.groups > 1 (one
// matmul per group then reads its own contiguous columns), zeros where a window leaves the input. A copy:
// the values are moved, never converted.
#pragma once
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "im2col_shape.h"
#include "kernel_stream.h"
#include "weight_slice.h"

namespace resnest {

// 16-byte copies when x and cols are 16-byte aligned and C/G is a multiple of 16 bytes' worth of T, else
// one element a thread. Throws resnest::Error when C does not split into s.groups groups.
// next: the filter of the matmul after it, which the threads ask L2 for in 4 KiB pieces before they gather
// (kernel_common.cuh, prefetch_l2_across_grid; nothing with stream.prefetch_weights off), so that the matmul
// finds it there.
template <typename T>
void im2col_nhwc(const T* x, T* cols, const Im2colShape& s, KernelStream stream, const L2Prefetch& next = {});

}  // namespace resnest
