// conv_as_gemm.cpp: when a convolution is one matrix product, and its column-major shape (conv_as_gemm.h).
#include "conv_as_gemm.h"

#include "resnest/error.h"

namespace resnest {

bool conv_runs_as_gemm(const Conv2dAttrs& a) {
    return a.kernel_h == 1 && a.kernel_w == 1 && a.stride_h == 1 && a.stride_w == 1 && a.pad_h == 0 &&
           a.pad_w == 0 && a.dilation_h == 1 && a.dilation_w == 1 && a.groups == 1;
}

ConvAsGemm conv_as_gemm(const Conv2dAttrs& a, int batch, int h, int w) {
    if (!conv_runs_as_gemm(a))
        throw Error("conv_as_gemm: a " + std::to_string(a.kernel_h) + "x" + std::to_string(a.kernel_w) +
                    " convolution with stride " + std::to_string(a.stride_h) + ", padding " + std::to_string(a.pad_h) +
                    " and " + std::to_string(a.groups) + " groups is not one matrix product");
    ConvAsGemm g;
    g.m = a.out_channels;
    g.n = (int64_t)batch * h * w;
    g.k = a.in_channels;
    g.lda = a.in_channels;
    g.ldb = a.in_channels;
    g.ldc = a.out_channels;
    return g;
}

}  // namespace resnest
