// conv_as_gemm.cpp: when a convolution is one matrix product, and its column-major shape (conv_as_gemm.h).
#include "conv_as_gemm.h"

#include "resnest/error.h"

namespace resnest {

bool conv_runs_as_gemm(const Conv2dAttrs& a) {
    return a.kernel_h == 1 && a.kernel_w == 1 && a.stride_h == 1 && a.stride_w == 1 && a.pad_h == 0 &&
           a.pad_w == 0 && a.dilation_h == 1 && a.dilation_w == 1 && a.groups == 1;
}

bool conv_window_is_3x3_same(const Conv2dAttrs& a) {
    return a.kernel_h == 3 && a.kernel_w == 3 && a.stride_h == 1 && a.stride_w == 1 && a.pad_h == 1 &&
           a.pad_w == 1 && a.dilation_h == 1 && a.dilation_w == 1;
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

Im2colShape im2col_shape(const Conv2dAttrs& a, int batch, int in_h, int in_w, int out_h, int out_w,
                         bool group_major) {
    Im2colShape s;
    s.groups = group_major ? a.groups : 1;
    s.n = batch, s.h = in_h, s.w = in_w, s.c = a.in_channels, s.oh = out_h, s.ow = out_w;
    s.kh = a.kernel_h, s.kw = a.kernel_w, s.stride_h = a.stride_h, s.stride_w = a.stride_w;
    s.pad_h = a.pad_h, s.pad_w = a.pad_w, s.dilation_h = a.dilation_h, s.dilation_w = a.dilation_w;
    return s;
}

ConvAsGemm conv_as_im2col_gemm(const Im2colShape& s, int out_channels) {
    ConvAsGemm g;
    g.m = out_channels;
    g.n = s.rows();
    g.k = s.cols();
    g.lda = g.k;
    g.ldb = g.k;
    g.ldc = out_channels;
    return g;
}

ConvAsGemm conv_as_grouped_im2col_gemm(const Im2colShape& s, int out_channels) {
    if (s.groups < 1 || s.c % s.groups != 0 || out_channels % s.groups != 0)
        throw Error("conv_as_grouped_im2col_gemm: " + std::to_string(s.c) + " -> " + std::to_string(out_channels) +
                    " channels do not split into " + std::to_string(s.groups) + " groups");
    ConvAsGemm g;
    g.m = out_channels / s.groups;
    g.n = s.rows();
    g.k = s.cols() / s.groups;
    g.lda = g.k;
    g.ldb = s.cols();
    g.ldc = out_channels;
    g.batch = s.groups;
    g.stride_a = g.m * g.k;
    g.stride_b = g.k;
    g.stride_c = g.m;
    return g;
}

void im2col_nhwc_host(const float* x, const Im2colShape& s, float* cols) {
    for (int b = 0; b < s.n; b++)
        for (int oy = 0; oy < s.oh; oy++)
            for (int ox = 0; ox < s.ow; ox++) {
                float* row = cols + (((int64_t)b * s.oh + oy) * s.ow + ox) * s.cols();  // (G, KH, KW, C/G)
                const int group_c = s.c / s.groups;
                for (int ky = 0; ky < s.kh; ky++)
                    for (int kx = 0; kx < s.kw; kx++) {
                        const int iy = oy * s.stride_h - s.pad_h + ky * s.dilation_h;
                        const int ix = ox * s.stride_w - s.pad_w + kx * s.dilation_w;
                        const bool inside = iy >= 0 && iy < s.h && ix >= 0 && ix < s.w;
                        const float* px = x + (((int64_t)b * s.h + iy) * s.w + ix) * s.c;
                        for (int g = 0; g < s.groups; g++) {  // group g's channels to its block of the row
                            float* dst = row + (((int64_t)g * s.kh + ky) * s.kw + kx) * group_c;
                            for (int ci = 0; ci < group_c; ci++) dst[ci] = inside ? px[g * group_c + ci] : 0.0f;
                        }
                    }
            }
}

std::vector<int> split_k_candidates(int64_t k, float waves) {
    std::vector<int> splits;
    if (!(waves > 0.0f) || waves >= 1.0f) return splits;
    for (int s = 2; s <= 32; s *= 2)
        if (waves * (float)s <= 2.0f && k / s >= kMinSplitDepth) splits.push_back(s);
    return splits;
}

}  // namespace resnest
