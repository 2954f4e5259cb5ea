// cpu_conv2d.cpp: 2-D convolution on the CPU, grouped and dilated: im2col + GEMM per group (a 1x1,
// stride-1, unpadded conv multiplies the input directly), and a direct double-precision version that
// checks it.
#include <cstring>

#include "cpu/cpu_ops.h"

namespace resnest {

static bool conv_is_pointwise(const Conv2dAttrs& a) {
    return a.kernel_h == 1 && a.kernel_w == 1 && a.stride_h == 1 && a.stride_w == 1 && a.pad_h == 0 &&
           a.pad_w == 0;
}

size_t conv2d_workspace_floats(const Conv2dAttrs& a, int64_t, int64_t, int64_t out_h, int64_t out_w) {
    if (conv_is_pointwise(a)) return 0;
    return (size_t)(a.in_channels / a.groups) * a.kernel_h * a.kernel_w * out_h * out_w;
}

// col (Cg*KH*KW, OH*OW): row (c, ky, kx) holds the input pixel each output position reads, 0 in padding.
static void im2col(const Conv2dAttrs& a, const float* x,  // (Cg, H, W)
                   int64_t in_h, int64_t in_w, int64_t out_h, int64_t out_w, float* col) {
    int cg = a.in_channels / a.groups;
    for (int c = 0; c < cg; c++) {
        for (int ky = 0; ky < a.kernel_h; ky++) {
            for (int kx = 0; kx < a.kernel_w; kx++) {
                for (int64_t oy = 0; oy < out_h; oy++) {
                    int64_t iy = oy * a.stride_h - a.pad_h + (int64_t)ky * a.dilation_h;
                    float* dst = col + oy * out_w;
                    if (iy < 0 || iy >= in_h) {
                        std::memset(dst, 0, out_w * sizeof(float));
                        continue;
                    }
                    const float* src = x + ((int64_t)c * in_h + iy) * in_w;
                    for (int64_t ox = 0; ox < out_w; ox++) {
                        int64_t ix = ox * a.stride_w - a.pad_w + (int64_t)kx * a.dilation_w;
                        dst[ox] = (ix >= 0 && ix < in_w) ? src[ix] : 0.f;
                    }
                }
                col += out_h * out_w;
            }
        }
    }
}

void conv2d_im2col_gemm(const Conv2dAttrs& a, const float* x, int64_t in_h, int64_t in_w, const float* w,
                        const float* bias, float* y, int64_t out_h, int64_t out_w, float* workspace,
                        int threads) {
    int groups = a.groups;
    int cin_g = a.in_channels / groups;
    int cout_g = a.out_channels / groups;
    int kdim = cin_g * a.kernel_h * a.kernel_w;
    int64_t ohw = out_h * out_w;
    bool pointwise = conv_is_pointwise(a);
    if (bias) {
        for (int o = 0; o < a.out_channels; o++)
            for (int64_t p = 0; p < ohw; p++) y[o * ohw + p] = bias[o];
    }
    for (int g = 0; g < groups; g++) {
        const float* xg = x + (int64_t)g * cin_g * in_h * in_w;  // (Cg, H, W)
        const float* cols = xg;                                  // (kdim, OH*OW)
        if (!pointwise) {
            im2col(a, xg, in_h, in_w, out_h, out_w, workspace);
            cols = workspace;
        }
        cpu_sgemm(cout_g, (int)ohw, kdim, w + (int64_t)g * cout_g * kdim, kdim, cols, (int)ohw,
                  y + (int64_t)g * cout_g * ohw, (int)ohw, bias != nullptr, threads);
    }
}

void conv2d_direct_double(const Conv2dAttrs& a, const float* x, int64_t in_h, int64_t in_w, const float* w,
                          const float* bias, float* y, int64_t out_h, int64_t out_w) {
    int cin_g = a.in_channels / a.groups;
    int cout_g = a.out_channels / a.groups;
    for (int o = 0; o < a.out_channels; o++) {
        int g = o / cout_g;
        for (int64_t oy = 0; oy < out_h; oy++) {
            for (int64_t ox = 0; ox < out_w; ox++) {
                double sum = bias ? bias[o] : 0.0;
                for (int c = 0; c < cin_g; c++) {
                    const float* xc = x + (int64_t)(g * cin_g + c) * in_h * in_w;
                    const float* wc = w + ((int64_t)o * cin_g + c) * a.kernel_h * a.kernel_w;
                    for (int ky = 0; ky < a.kernel_h; ky++) {
                        int64_t iy = oy * a.stride_h - a.pad_h + (int64_t)ky * a.dilation_h;
                        if (iy < 0 || iy >= in_h) continue;
                        for (int kx = 0; kx < a.kernel_w; kx++) {
                            int64_t ix = ox * a.stride_w - a.pad_w + (int64_t)kx * a.dilation_w;
                            if (ix < 0 || ix >= in_w) continue;
                            sum += (double)xc[iy * in_w + ix] * wc[ky * a.kernel_w + kx];
                        }
                    }
                }
                y[((int64_t)o * out_h + oy) * out_w + ox] = (float)sum;
            }
        }
    }
}

}  // namespace resnest
