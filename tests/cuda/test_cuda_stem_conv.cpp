// test_cuda_stem_conv.cpp: the first convolution computed straight from the NCHW float input
// (kernels/conv_stem_direct_nchw.cu) against the CPU oracle's convolution + bias (+ ReLU), in half and in float
// storage: ResNeSt's deep stem at each precision's padded input (8 channels in fp16, 4 in tf32, 3 in fp32),
// a 7x7 / 2 stem and a ragged one (one channel, odd sizes, stride 1), batches 1 and 3, with and without ReLU
// and bias; outputs poisoned and guarded, the filter's padded channels NaN (never read); each launch twice,
// bit for bit.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <thread>
#include <vector>

#include "conv_stem_direct_nchw.cuh"
#include "cpu/cpu_ops.h"
#include "cuda_test_helpers.h"
#include "graph.h"

using namespace cuda_test;
using resnest::Precision;

namespace {

// Checks s (its batch taken from `batches`) in precision p's storage. Returns the launches.
int check_stem(resnest::StemConvShape s, std::initializer_list<int> batches, Precision p) {
    int launches = 0;
    for (int n : batches) {
        s.n = n;
        REQUIRE(s.fits());
        const uint64_t salt = (uint64_t)s.h * 131 + s.cout * 7 + s.k + s.cin_padded * 3 + n;
        const std::vector<float> x = random_floats((size_t)n * s.c * s.h * s.w, -1, 1, salt);  // (N, C, H, W)
        const float scale = 1.0f / std::sqrt((float)(s.c * s.k * s.k));
        const std::vector<float> w_oihw =
            round_to_storage(random_floats((size_t)s.cout * s.c * s.k * s.k, -scale, scale, salt + 1), p);
        const std::vector<float> bias = random_floats(s.cout, -0.5f, 0.5f, salt + 2);
        std::vector<float> w((size_t)s.cout * s.k * s.k * s.cin_padded, std::nanf(""));  // (Cout, k, k, Cp)
        for (int o = 0; o < s.cout; o++)
            for (int ch = 0; ch < s.c; ch++)
                for (int ky = 0; ky < s.k; ky++)
                    for (int kx = 0; kx < s.k; kx++)
                        w[(size_t)s.w_offset(o, ky, kx, ch)] = w_oihw[(((size_t)o * s.c + ch) * s.k + ky) * s.k + kx];
        resnest::Conv2dAttrs a;
        a.in_channels = s.c, a.out_channels = s.cout, a.kernel_h = a.kernel_w = s.k;
        a.stride_h = a.stride_w = s.stride, a.pad_h = a.pad_w = s.pad, a.bias = true;
        const size_t out_hw = (size_t)s.oh * s.ow;
        std::vector<float> conv((size_t)n * s.cout * out_hw);  // (N, Cout, OH, OW), no bias yet
        std::vector<float> ws(resnest::conv2d_workspace_floats(a, s.h, s.w, s.oh, s.ow) + 1);
        for (int b = 0; b < n; b++)
            resnest::conv2d_im2col_gemm(a, x.data() + (size_t)b * s.c * s.h * s.w, s.h, s.w, w_oihw.data(), nullptr,
                                        conv.data() + (size_t)b * s.cout * out_hw, s.oh, s.ow, ws.data(),
                                        (int)std::max(1u, std::thread::hardware_concurrency()));
        GuardedBuffer dx(x.size(), 4), dw(w.size(), esize_of(p)), dbias(bias.size(), 4),
            dy((size_t)n * s.cout * out_hw, esize_of(p));
        dx.upload(x), dw.upload(w), dbias.upload(bias);
        for (bool with_bias : {true, false})
            for (bool relu : {true, false}) {
                INFO(resnest::precision_name(p) << " c " << s.c << " cp " << s.cin_padded << " " << s.h << "x" << s.w
                                                << " cout " << s.cout << " k" << s.k << " s" << s.stride << " batch "
                                                << n << (with_bias ? " bias" : "") << (relu ? " relu" : ""));
                std::vector<float> ref = conv;
                for (int b = 0; b < n; b++)
                    for (int o = 0; o < s.cout; o++)
                        for (size_t q = 0; q < out_hw; q++) {
                            float& v = ref[((size_t)b * s.cout + o) * out_hw + q];
                            v += with_bias ? bias[(size_t)o] : 0.0f;
                            if (relu) v = std::max(v, 0.0f);
                        }
                std::vector<float> first;
                for (int rep = 0; rep < 2; rep++) {
                    check(cudaMemset(dy.data(), kPoison, dy.count() * esize_of(p)), "poison");
                    if (p == Precision::fp16)
                        resnest::conv_stem_direct_nchw<__half>((const float*)dx.data(), (const __half*)dw.data(),
                                                               with_bias ? (const float*)dbias.data() : nullptr,
                                                               (__half*)dy.data(), s, relu,
                                                               resnest::KernelStream(nullptr));
                    else
                        resnest::conv_stem_direct_nchw<float>((const float*)dx.data(), (const float*)dw.data(),
                                                              with_bias ? (const float*)dbias.data() : nullptr,
                                                              (float*)dy.data(), s, relu,
                                                              resnest::KernelStream(nullptr));
                    check(cudaDeviceSynchronize(), "stem convolution");
                    launches++;
                    std::vector<float> got;
                    std::string why;
                    REQUIRE(dy.download(got, &why));
                    got = nhwc_to_nchw(got, n, s.cout, (int)out_hw);
                    if (rep == 0) {
                        CHECK(max_rel_error(got, ref) <= op_tolerance(p));
                        first = got;
                    } else {
                        CHECK(got == first);
                    }
                }
            }
    }
    return launches;
}

}  // namespace

TEST_CASE("the stem's first convolution read straight from the NCHW input matches the CPU in half and in float",
          "[cuda][conv][implicit-gemm]") {
    INFO("seed " << run_seed());
    using S = resnest::StemConvShape;
    int launches = 0;
    for (Precision p : {Precision::fp16, Precision::fp32}) {
        const int padded = p == Precision::fp16 ? 8 : 3;
        launches += check_stem(S{1, 3, 224, 224, padded, 32, 3, 2, 1, 112, 112}, {1, 3}, p);
        launches += check_stem(S{1, 3, 224, 224, 4, 32, 3, 2, 1, 112, 112}, {1}, p);  // tf32's padding
        launches += check_stem(S{1, 3, 61, 47, padded, 64, 7, 2, 3, 31, 24}, {1, 3}, p);
        launches += check_stem(S{1, 1, 37, 29, 1, 16, 5, 1, 2, 37, 29}, {1, 3}, p);
    }
    std::printf("cuda stem convolution from the NCHW input: %d launches checked\n", launches);
}

// A small shape for the sanitize stage's racecheck ([ops], not [conv]).
TEST_CASE("the stem's first convolution from the NCHW input on a small shape", "[cuda][ops][implicit-gemm]") {
    INFO("seed " << run_seed());
    CHECK(check_stem(resnest::StemConvShape{1, 3, 20, 18, 8, 32, 3, 2, 1, 10, 9}, {2}, Precision::fp16) > 0);
}
