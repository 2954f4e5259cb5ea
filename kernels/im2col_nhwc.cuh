// im2col_nhwc.cuh: gathers a convolution's input windows into the im2col matrix, so that the convolution is
// one matrix product (runtime/conv_as_gemm.h): x (N, H, W, C) T -> cols (N*OH*OW, KH*KW*C) T, one row per
// output position, columns in (kh, kw, c) order, zeros where a window leaves the input. A copy: the values
// are moved, never converted.
#pragma once
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "im2col_shape.h"
#include "kernel_stream.h"

namespace resnest {

// x and cols 16-byte aligned; 16-byte copies when C is a multiple of 16 bytes' worth of T.
template <typename T>
void im2col_nhwc(const T* x, T* cols, const Im2colShape& s, KernelStream stream);

}  // namespace resnest
