// test_stem_conv_plan.cpp: the host arithmetic of the first convolution computed straight from the NCHW
// input (kernels/conv_stem_direct_nchw_plan.h), checked on the CPU: its threads, emulated with the kernel's
// own offsets (the filter staged as the kernel stages it, its padded channels NaN so that reading one
// fails), write every output once and equal the CPU oracle's convolution; and the shapes it refuses.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

#include "conv_stem_direct_nchw_plan.h"
#include "cpu/cpu_ops.h"
#include "lab/lab_reference.h"
#include "test_helpers.h"

using namespace resnest;

TEST_CASE("the stem's direct convolution, emulated thread by thread on the host, writes every output once and "
          "equals the CPU oracle's", "[kernel-plan]") {
    // ResNeSt's deep stem at fp16 (3 channels padded to 8), a 7x7 / 2 stem padded to 4, and a ragged one.
    for (StemConvShape s : {StemConvShape{2, 3, 24, 20, 8, 32, 3, 2, 1, 12, 10},
                            StemConvShape{1, 3, 17, 15, 4, 64, 7, 2, 3, 9, 8},
                            StemConvShape{3, 1, 9, 7, 1, 16, 5, 1, 2, 9, 7}}) {
        INFO("c " << s.c << " " << s.h << "x" << s.w << " cout " << s.cout << " k" << s.k << " s" << s.stride);
        REQUIRE(s.fits());
        const std::vector<float> x = test::random_floats((size_t)s.n * s.c * s.h * s.w, -1.0f, 1.0f);
        const std::vector<float> w_oihw = test::random_floats((size_t)s.cout * s.c * s.k * s.k, -0.5f, 0.5f);
        const std::vector<float> bias = test::random_floats((size_t)s.cout, -0.5f, 0.5f);
        // The filter as the graph stores it, (Cout, k, k, Cp), its padded channels NaN.
        std::vector<float> w((size_t)s.cout * s.k * s.k * s.cin_padded, std::nanf(""));
        for (int o = 0; o < s.cout; o++)
            for (int ch = 0; ch < s.c; ch++)
                for (int ky = 0; ky < s.k; ky++)
                    for (int kx = 0; kx < s.k; kx++)
                        w[(size_t)s.w_offset(o, ky, kx, ch)] = w_oihw[(((size_t)o * s.c + ch) * s.k + ky) * s.k + kx];
        // The oracle: (Cout, OH, OW) per image.
        Conv2dAttrs a;
        a.in_channels = s.c, a.out_channels = s.cout, a.kernel_h = a.kernel_w = s.k;
        a.stride_h = a.stride_w = s.stride, a.pad_h = a.pad_w = s.pad, a.bias = true;
        std::vector<float> ref((size_t)s.n * s.cout * s.oh * s.ow);
        for (int b = 0; b < s.n; b++)
            conv2d_direct_double(a, x.data() + (size_t)b * s.c * s.h * s.w, s.h, s.w, w_oihw.data(), bias.data(),
                                 ref.data() + (size_t)b * s.cout * s.oh * s.ow, s.oh, s.ow);
        // The kernel's staging, then its threads.
        const int taps = s.k * s.k;
        std::vector<float> filter((size_t)s.cout * taps * s.c);
        for (int i = 0; i < (int)filter.size(); i++) {
            const int ch = i % s.c, tap = (i / s.c) % taps, o = i / (s.c * taps);
            filter[(size_t)i] = w[(size_t)s.w_offset(o, tap / s.k, tap % s.k, ch)];
        }
        std::vector<float> y((size_t)s.n * s.oh * s.ow * s.cout, std::nanf(""));
        std::vector<int> writes(y.size(), 0);
        for (long long t = 0; t < s.threads(); t++) {
            long long image;
            int oy, ox, o0;
            s.thread_cell(t, &image, &oy, &ox, &o0);
            float acc[kStemChannelsPerThread];
            for (int j = 0; j < kStemChannelsPerThread; j++) acc[j] = bias[(size_t)(o0 + j)];
            for (int ky = 0; ky < s.k; ky++)
                for (int kx = 0; kx < s.k; kx++) {
                    const int iy = oy * s.stride - s.pad + ky, ix = ox * s.stride - s.pad + kx;
                    if (iy < 0 || iy >= s.h || ix < 0 || ix >= s.w) continue;
                    for (int ch = 0; ch < s.c; ch++) {
                        const float v = x[(size_t)s.x_offset(image, ch, iy, ix)];
                        for (int j = 0; j < kStemChannelsPerThread; j++)
                            acc[j] += v * filter[(size_t)s.filter_index(o0 + j, ky, kx, ch)];
                    }
                }
            for (int j = 0; j < kStemChannelsPerThread; j++) {
                const long long at = s.y_offset(image, oy, ox, o0 + j);
                y[(size_t)at] = acc[j];
                writes[(size_t)at]++;
            }
        }
        CHECK(std::count(writes.begin(), writes.end(), 1) == (long)writes.size());
        std::vector<float> got((size_t)s.n * s.cout * s.oh * s.ow);  // NHWC -> NCHW
        for (int b = 0; b < s.n; b++)
            for (int o = 0; o < s.cout; o++)
                for (int p = 0; p < s.oh * s.ow; p++)
                    got[((size_t)b * s.cout + o) * s.oh * s.ow + p] =
                        y[(size_t)s.y_offset(b, p / s.ow, p % s.ow, o)];
        CHECK(lab::max_rel_error(got, std::vector<double>(ref.begin(), ref.end())) < 1e-5);
    }
}

TEST_CASE("the stem's direct convolution refuses shapes it cannot run", "[kernel-plan]") {
    const StemConvShape ok{1, 3, 224, 224, 8, 32, 3, 2, 1, 112, 112};
    REQUIRE(ok.fits());
    CHECK(ok.threads() == 112LL * 112 * 4);
    StemConvShape s = ok;
    s.c = 9, s.cin_padded = 9;  // more than 8 input channels
    CHECK_FALSE(s.fits());
    s = ok, s.cin_padded = 2;  // padded below the real channels
    CHECK_FALSE(s.fits());
    s = ok, s.cout = 36;  // not whole 8-channel groups
    CHECK_FALSE(s.fits());
    s = ok, s.k = 9, s.pad = 4;  // a window over 7
    CHECK_FALSE(s.fits());
    s = ok, s.pad = 3;  // padding as wide as the window
    CHECK_FALSE(s.fits());
    s = ok, s.oh = 114;  // a last row whose window starts past the input (113 * 2 - 1 = 225)
    CHECK_FALSE(s.fits());
    s = ok, s.cout = 512, s.k = 7;  // the filter over 48 KiB of shared memory
    CHECK_FALSE(s.fits());
}
