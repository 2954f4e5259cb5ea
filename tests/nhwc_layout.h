// nhwc_layout.h: the NCHW <-> NHWC transposes the unit and GPU suites use to feed NHWC kernels and to
// compare their results with the NCHW CPU oracle. Host code only.
#pragma once
#include <cstddef>
#include <vector>

namespace test_layout {

// (N, C, HW) -> (N, HW, C)
inline std::vector<float> nchw_to_nhwc(const std::vector<float>& x, int n, int c, int hw) {
    std::vector<float> y(x.size());
    for (int b = 0; b < n; b++)
        for (int ch = 0; ch < c; ch++)
            for (int p = 0; p < hw; p++) y[((size_t)b * hw + p) * c + ch] = x[((size_t)b * c + ch) * hw + p];
    return y;
}

// (N, HW, C) -> (N, C, HW)
inline std::vector<float> nhwc_to_nchw(const std::vector<float>& x, int n, int c, int hw) {
    std::vector<float> y(x.size());
    for (int b = 0; b < n; b++)
        for (int ch = 0; ch < c; ch++)
            for (int p = 0; p < hw; p++) y[((size_t)b * c + ch) * hw + p] = x[((size_t)b * hw + p) * c + ch];
    return y;
}

}  // namespace test_layout
