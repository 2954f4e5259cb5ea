// conv_stem_direct_nchw.cuh: the network's first convolution computed directly from its NCHW float input
// (bias and ReLU fused), writing NHWC in the storage type: in place of the layout conversion
// (layout_convert.cuh) and the convolution's library way, one kernel that reads the input once. A direct
// convolution: at most 8 input channels and a 7x7 window, so each output is at most 392 multiply-adds, on
// CUDA cores in float. The problem: conv_stem_direct_nchw_plan.h. Not yet measured on a GPU: the runtime
// times it against the two only when asked (RESNEST_IMPLICIT_GEMM).
#pragma once
#include <cuda_fp16.h>

#include "kernel_stream.h"
#include "conv_stem_direct_nchw_plan.h"

namespace resnest {

// Why the kernel cannot run s ("" when it can): the shape (fits()), or y not 16-byte aligned (its stores).
const char* conv_stem_direct_nchw_refusal(const StemConvShape& s, const void* y);

// x (N, C, H, W) float, w (Cout, k, k, Cp) in T as stored, bias (Cout) float or null, y (N, OH, OW, Cout) in
// T. One thread per 8 output channels of a cell, 256 a block; the filter staged in shared memory as float.
// Throws resnest::Error on a shape it refuses. T: float or __half.
template <typename T>
void conv_stem_direct_nchw(const float* x, const T* w, const float* bias, T* y, const StemConvShape& s, bool relu,
                           KernelStream stream);

}  // namespace resnest
