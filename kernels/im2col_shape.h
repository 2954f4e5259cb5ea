// im2col_shape.h: the shape of an im2col gather (kernels/im2col_nhwc.cu, runtime/conv_as_gemm.h): the input
// windows of a convolution laid out as one row per output position. Plain C++, shared by the kernel and the
// host code that plans and checks it.
#pragma once
#include <cstdint>

#ifdef __CUDACC__
#define RESNEST_IM2COL_HOST_DEVICE __host__ __device__
#else
#define RESNEST_IM2COL_HOST_DEVICE
#endif

namespace resnest {

struct Im2colShape {
    int n = 0, h = 0, w = 0, c = 0;  // input (N, H, W, C)
    int oh = 0, ow = 0;              // output positions
    int kh = 1, kw = 1, stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dilation_h = 1, dilation_w = 1;
    // Column order: 1, (kh, kw, c) over all C channels (the dense filter's order); G > 1, group-major
    // (g, kh, kw, c') with c' < C/G, so that each group's KH*KW*C/G columns are contiguous in a row.
    int groups = 1;
    RESNEST_IM2COL_HOST_DEVICE int64_t rows() const { return (int64_t)n * oh * ow; }  // N*OH*OW
    RESNEST_IM2COL_HOST_DEVICE int64_t cols() const { return (int64_t)kh * kw * c; }  // KH*KW*C
};

}  // namespace resnest
