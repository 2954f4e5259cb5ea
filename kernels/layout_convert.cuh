// layout_convert.cuh: layout and precision conversion at the model's edges: the float NCHW tensors the API
// takes and returns, to and from the backend's NHWC storage type T (float or __half).
#pragma once
#include <cuda_runtime.h>

#include "kernel_stream.h"

namespace resnest {

// x (N, C, H, W) float -> y (N, H, W, C_padded) T, C_padded >= C: channels C .. C_padded - 1 are zeros (a
// first convolution with zero filter weights there runs on tensor cores; pad_input_channels in passes.h).
template <typename T>
void nchw_float_to_nhwc(const float* x, T* y, int n, int c, int c_padded, int hw, KernelStream stream);

// x (N, H, W, C) T -> y (N, C, H, W) float. With hw = 1 this is a plain conversion of (N, C).
template <typename T>
void nhwc_to_nchw_float(const T* x, float* y, int n, int c, int hw, KernelStream stream);

}  // namespace resnest
