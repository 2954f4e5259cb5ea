// pool2d_nhwc.cuh: max and average pooling over NHWC tensors, with PyTorch's rules: padded cells never win
// a max; the average divides by the window clipped to the padded input (count_include_pad) or by the
// valid cells only; ceil_mode only changes the output size, which the caller passes.
#pragma once
#include <cuda_runtime.h>

#include "kernel_stream.h"
#include "weight_slice.h"

namespace resnest {

struct Pool2dShape {
    int n, in_h, in_w, channels, out_h, out_w;
    int kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w;
    bool count_include_pad;  // average pooling only
};

// x (N, H, W, C) -> y (N, OH, OW, C). next: the filters of the library convolutions after the pool, which
// its threads ask L2 for before they wait on the kernel before them (nothing with stream.prefetch_weights off).
template <typename T>
void max_pool2d_nhwc(const T* x, T* y, const Pool2dShape& s, KernelStream stream, const L2Prefetch& next = {});
template <typename T>
void avg_pool2d_nhwc(const T* x, T* y, const Pool2dShape& s, KernelStream stream, const L2Prefetch& next = {});

}  // namespace resnest
