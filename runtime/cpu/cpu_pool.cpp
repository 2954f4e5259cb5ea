// cpu_pool.cpp: max pooling, average pooling (both padding-divisor rules, floor and ceil mode) and the
// global average pool, on the CPU. Window sums in double.
#include <algorithm>
#include <limits>

#include "cpu/cpu_ops.h"

namespace resnest {

void max_pool2d(const Pool2dAttrs& a, const float* x, int64_t channels, int64_t in_h, int64_t in_w, float* y,
                int64_t out_h, int64_t out_w) {
    for (int64_t c = 0; c < channels; c++) {
        const float* xc = x + c * in_h * in_w;
        for (int64_t oy = 0; oy < out_h; oy++) {
            int64_t y0 = std::max<int64_t>(oy * a.stride_h - a.pad_h, 0);
            int64_t y1 = std::min<int64_t>(oy * a.stride_h - a.pad_h + a.kernel_h, in_h);
            for (int64_t ox = 0; ox < out_w; ox++) {
                int64_t x0 = std::max<int64_t>(ox * a.stride_w - a.pad_w, 0);
                int64_t x1 = std::min<int64_t>(ox * a.stride_w - a.pad_w + a.kernel_w, in_w);
                float best = -std::numeric_limits<float>::infinity();
                for (int64_t iy = y0; iy < y1; iy++)
                    for (int64_t ix = x0; ix < x1; ix++) best = std::max(best, xc[iy * in_w + ix]);
                y[(c * out_h + oy) * out_w + ox] = best;
            }
        }
    }
}

void avg_pool2d(const Pool2dAttrs& a, const float* x, int64_t channels, int64_t in_h, int64_t in_w, float* y,
                int64_t out_h, int64_t out_w) {
    for (int64_t c = 0; c < channels; c++) {
        const float* xc = x + c * in_h * in_w;
        for (int64_t oy = 0; oy < out_h; oy++) {
            int64_t ys = oy * a.stride_h - a.pad_h;
            // The window clipped to the padded input (what count_include_pad divides by) ...
            int64_t ye_pad = std::min<int64_t>(ys + a.kernel_h, in_h + a.pad_h);
            // ... and to the input itself (the cells summed, and the divisor without padding).
            int64_t y0 = std::max<int64_t>(ys, 0), y1 = std::min<int64_t>(ys + a.kernel_h, in_h);
            for (int64_t ox = 0; ox < out_w; ox++) {
                int64_t xs = ox * a.stride_w - a.pad_w;
                int64_t xe_pad = std::min<int64_t>(xs + a.kernel_w, in_w + a.pad_w);
                int64_t x0 = std::max<int64_t>(xs, 0), x1 = std::min<int64_t>(xs + a.kernel_w, in_w);
                double sum = 0.0;
                for (int64_t iy = y0; iy < y1; iy++)
                    for (int64_t ix = x0; ix < x1; ix++) sum += xc[iy * in_w + ix];
                int64_t divisor = a.count_include_pad ? (ye_pad - ys) * (xe_pad - xs) : (y1 - y0) * (x1 - x0);
                y[(c * out_h + oy) * out_w + ox] = (float)(sum / (double)divisor);
            }
        }
    }
}

void global_avg_pool(const float* x, int64_t channels, int64_t hw, float* y) {
    for (int64_t c = 0; c < channels; c++) {
        double sum = 0.0;
        for (int64_t p = 0; p < hw; p++) sum += x[c * hw + p];
        y[c] = (float)(sum / (double)hw);
    }
}

}  // namespace resnest
