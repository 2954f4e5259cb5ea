// test_cuda_implicit_conv.cpp: the implicit-GEMM 3x3 convolution (kernels/conv3x3_implicit_gemm.cu) against the
// CPU oracle at every shape of the committed models it runs (their split-attention convolutions and the deep
// stem's last one) and at ragged ones (partial tiles, four groups, one pixel), with and without bias and
// ReLU, at every split count, on poisoned outputs with guard regions: the same result twice in a row (the
// split sums in a fixed order, the tile counts reset by each launch) and the counts left zero; the same with
// split attention's pool in the epilogue; and on small shapes, for the sanitize stage's racecheck.
#include <catch2/catch.hpp>

#include <algorithm>
#include <initializer_list>
#include <thread>
#include <vector>

#include "conv3x3_implicit_gemm.cuh"
#include "conv_as_gemm.h"
#include "cpu/cpu_ops.h"
#include "cuda_test_helpers.h"
#include "graph.h"
#include "weight_layout.h"

using namespace cuda_test;
using resnest::Precision;

namespace {

bool runs_implicit(const ConvCase& c) {
    const resnest::Conv2dAttrs& a = c.a;
    const resnest::ImplicitConv3x3Shape s{1, c.h, c.w, a.in_channels, a.out_channels, a.groups};
    return resnest::conv_window_is_3x3_same(a) && s.fits();
}

ConvCase case3x3(int cin, int cout, int groups, int h, int w) {
    resnest::Conv2dAttrs a;
    a.in_channels = cin, a.out_channels = cout, a.kernel_h = a.kernel_w = 3, a.pad_h = a.pad_w = 1;
    a.groups = groups, a.bias = true;
    return {a, h, w, h, w};
}

// Batch n of case c: fresh fp16 inputs (the salt tells the two checks below apart), the CPU oracle's
// convolution without the bias (NCHW), the device copies, and the split-K scratch with its tile counts zero.
struct ImplicitConvProblem {
    resnest::ImplicitConv3x3Shape s;
    int hw;
    std::vector<float> bias, conv;
    GuardedBuffer dx, dw, dbias;
    float* partial = nullptr;
    int* arrivals = nullptr;

    ImplicitConvProblem(const ConvCase& c, int n, uint64_t salt_offset)
        : s{n, c.h, c.w, c.a.in_channels, c.a.out_channels, c.a.groups},
          hw(c.h * c.w),
          dx((size_t)n * c.a.in_channels * c.h * c.w, 2),
          dw((size_t)c.a.out_channels * (c.a.in_channels / c.a.groups) * 9, 2),
          dbias(c.a.out_channels, 4) {
        const resnest::Conv2dAttrs& a = c.a;
        const int threads = (int)std::max(1u, std::thread::hardware_concurrency());
        const int cin_g = a.in_channels / a.groups;
        REQUIRE(s.fits());
        const uint64_t salt =
            (uint64_t)a.in_channels * 7919 + a.out_channels * 31 + hw * 7 + a.groups + n + salt_offset;
        const std::vector<float> x =
            round_to_storage(random_floats((size_t)n * a.in_channels * hw, -1, 1, salt), Precision::fp16);
        const float wscale = 1.0f / std::sqrt(9.0f * cin_g);
        const std::vector<float> w = round_to_storage(
            random_floats((size_t)a.out_channels * cin_g * 9, -wscale, wscale, salt + 1), Precision::fp16);
        bias = random_floats(a.out_channels, -0.5f, 0.5f, salt + 2);
        conv.assign((size_t)n * a.out_channels * hw, 0.0f);
        std::vector<float> ws(resnest::conv2d_workspace_floats(a, c.h, c.w, c.oh, c.ow) + 1);
        for (int b = 0; b < n; b++)
            resnest::conv2d_im2col_gemm(a, x.data() + (size_t)b * a.in_channels * hw, c.h, c.w, w.data(), nullptr,
                                        conv.data() + (size_t)b * a.out_channels * hw, c.oh, c.ow, ws.data(), threads);
        dx.upload(nchw_to_nhwc(x, n, a.in_channels, hw));
        dw.upload(resnest::conv_weight_oihw_to_ohwi(w, a.out_channels, cin_g, 3, 3));
        dbias.upload(bias);
        // Enough for 16 splits of the largest tiling either check launches (image by image has more tiles).
        resnest::ImplicitConv3x3Shape per_image = s;
        per_image.pool_radix = 1;
        check(cudaMalloc(&partial, resnest::conv3x3_implicit_gemm_partial_bytes(per_image, 16) + 16), "partial sums");
        check(cudaMalloc(&arrivals, per_image.tiles() * sizeof(int)), "tile counts");
        check(cudaMemset(arrivals, 0, per_image.tiles() * sizeof(int)), "tile counts");
    }
    ~ImplicitConvProblem() {
        cudaFree(partial);
        cudaFree(arrivals);
    }
    ImplicitConvProblem(const ImplicitConvProblem&) = delete;
    ImplicitConvProblem& operator=(const ImplicitConvProblem&) = delete;

    // Every tile count back at zero after the launches (each launch's last blocks reset theirs).
    void check_counts_zero() const {
        resnest::ImplicitConv3x3Shape per_image = s;
        per_image.pool_radix = 1;
        std::vector<int> counts(per_image.tiles(), -1);
        check(cudaMemcpy(counts.data(), arrivals, counts.size() * sizeof(int), cudaMemcpyDeviceToHost), "counts");
        CHECK(std::count(counts.begin(), counts.end(), 0) == (long)counts.size());
    }
};

// Checks the kernel against the CPU oracle on `c` at each batch and split count (those within its K steps),
// with and without bias and ReLU, each launch twice (the second bit for bit the first), and the tile
// counts zero afterwards. Returns the launches made.
int check_implicit_conv(const ConvCase& c, std::initializer_list<int> batches,
                        std::initializer_list<int> split_counts) {
    int launches = 0;
    for (int n : batches) {
        const resnest::Conv2dAttrs& a = c.a;
        ImplicitConvProblem prob(c, n, 0);
        const resnest::ImplicitConv3x3Shape& s = prob.s;
        const int hw = prob.hw;
        const std::vector<float>& conv = prob.conv;  // the bias and ReLU variants are added to it below
        const std::vector<float>& bias = prob.bias;
        GuardedBuffer dy(conv.size(), 2);
        for (bool with_bias : {true, false})
            for (bool relu : {false, true}) {
                std::vector<float> ref = conv;
                for (int b = 0; b < n; b++)
                    for (int o = 0; o < a.out_channels; o++)
                        for (int p = 0; p < hw; p++) {
                            float& v = ref[((size_t)b * a.out_channels + o) * hw + p];
                            if (with_bias) v += bias[o];
                            if (relu) v = std::max(v, 0.0f);
                        }
                for (int splits : split_counts) {
                    if (splits > s.k_steps()) continue;
                    INFO(a.in_channels << "->" << a.out_channels << " groups " << a.groups << " " << c.h << "x" << c.w
                                       << " batch " << n << (with_bias ? " bias" : "") << (relu ? " relu" : "")
                                       << " splits " << splits);
                    std::vector<float> first;
                    for (int rep = 0; rep < 2; rep++) {
                        check(cudaMemset(dy.data(), kPoison, conv.size() * 2), "poison");
                        resnest::conv3x3_implicit_gemm((const __half*)prob.dx.data(), (const __half*)prob.dw.data(),
                                                       with_bias ? (const float*)prob.dbias.data() : nullptr,
                                                       (__half*)dy.data(), s, splits, relu, prob.partial, prob.arrivals,
                                                       nullptr, resnest::KernelStream(nullptr));
                        check(cudaDeviceSynchronize(), "implicit GEMM convolution");
                        launches++;
                        std::vector<float> got;
                        std::string why;
                        REQUIRE(dy.download(got, &why));
                        got = nhwc_to_nchw(got, n, a.out_channels, hw);
                        if (rep == 0) {
                            CHECK(max_rel_error(got, ref) <= op_tolerance(Precision::fp16));
                            first = got;
                        } else {
                            CHECK(got == first);  // bit for bit: nothing depends on which block came last
                        }
                    }
                }
            }
        prob.check_counts_zero();
    }
    return launches;
}

// Checks the kernel with split attention's pool in its epilogue (s.pool_radix: 2 where the output channels
// split in two by 64, else 1) on `c`, bias and ReLU on, at each batch and split count: y against the CPU
// oracle as above, and every pool partial (n, j*R + r, c), poisoned before the launch, against the sum of the
// y it wrote over image n's positions j*64 .. j*64 + 63 of radix split r (in double); each launch twice, bit
// for bit. Returns the launches made.
int check_implicit_conv_pool(const ConvCase& c, std::initializer_list<int> batches,
                             std::initializer_list<int> split_counts) {
    int launches = 0;
    for (int n : batches) {
        const resnest::Conv2dAttrs& a = c.a;
        ImplicitConvProblem prob(c, n, 101);
        resnest::ImplicitConv3x3Shape s = prob.s;
        s.pool_radix = 2;
        if (!s.pool_fits()) s.pool_radix = 1;
        REQUIRE(s.pool_fits());
        const int R = s.pool_radix, C = s.pool_channels(), chunks = s.pool_chunks(), hw = prob.hw;
        const std::vector<float>& bias = prob.bias;
        std::vector<float> ref = prob.conv;  // NCHW, bias and ReLU applied below
        for (int b = 0; b < n; b++)
            for (int o = 0; o < a.out_channels; o++)
                for (int p = 0; p < hw; p++) {
                    float& v = ref[((size_t)b * a.out_channels + o) * hw + p];
                    v = std::max(v + bias[o], 0.0f);
                }
        GuardedBuffer dy(ref.size(), 2), dpool((size_t)n * chunks * C, 4);
        for (int splits : split_counts) {
            if (splits > s.k_steps()) continue;
            INFO(a.in_channels << "->" << a.out_channels << " groups " << a.groups << " " << c.h << "x" << c.w
                               << " batch " << n << " radix " << R << " splits " << splits << ", pool in the epilogue");
            std::vector<float> first_y, first_pool;
            for (int rep = 0; rep < 2; rep++) {
                check(cudaMemset(dy.data(), kPoison, ref.size() * 2), "poison");
                check(cudaMemset(dpool.data(), kPoison, dpool.count() * 4), "poison");
                resnest::conv3x3_implicit_gemm((const __half*)prob.dx.data(), (const __half*)prob.dw.data(),
                                               (const float*)prob.dbias.data(), (__half*)dy.data(), s, splits, true,
                                               prob.partial, prob.arrivals, (float*)dpool.data(),
                                               resnest::KernelStream(nullptr));
                check(cudaDeviceSynchronize(), "implicit GEMM convolution with the pool");
                launches++;
                std::vector<float> y, pool;
                std::string why;
                REQUIRE(dy.download(y, &why));
                REQUIRE(dpool.download(pool, &why));
                if (rep == 1) {
                    CHECK(y == first_y);
                    CHECK(pool == first_pool);
                    continue;
                }
                first_y = y, first_pool = pool;
                CHECK(max_rel_error(nhwc_to_nchw(y, n, a.out_channels, hw), ref) <= op_tolerance(Precision::fp16));
                std::vector<float> expect(pool.size(), 0.0f);  // from the y the kernel wrote (NHWC)
                for (int b = 0; b < n; b++)
                    for (int j = 0; j < chunks / R; j++)
                        for (int r = 0; r < R; r++)
                            for (int ch = 0; ch < C; ch++) {
                                double sum = 0.0;
                                for (int p = j * 64; p < hw && p < j * 64 + 64; p++)
                                    sum += y[((size_t)b * hw + p) * a.out_channels + (size_t)r * C + ch];
                                expect[((size_t)b * chunks + (size_t)j * R + r) * C + ch] = (float)sum;
                            }
                CHECK(max_rel_error(pool, expect) <= 1e-5);  // float sums of 64 values against double
            }
        }
        prob.check_counts_zero();
    }
    return launches;
}

}  // namespace

TEST_CASE("the implicit-GEMM 3x3 convolution matches the CPU at every shape it runs, at every split",
          "[cuda][conv][implicit-gemm]") {
    INFO("seed " << run_seed());
    std::vector<ConvCase> cases;
    for (const ConvCase& c : model_conv_cases())
        if (runs_implicit(c)) cases.push_back(c);
    // The split-attention convolutions of layers 1-4 (groups 2 in ResNeSt50, 1 in the fast model), their first
    // blocks' larger sizes and the deep stem's third convolution, at least.
    CHECK(cases.size() >= 8);
    cases.push_back(case3x3(64, 128, 2, 5, 3));   // M = 15 an image: one partial tile
    cases.push_back(case3x3(128, 256, 4, 9, 7));  // four groups of 32 -> 64
    cases.push_back(case3x3(32, 64, 1, 1, 1));    // one pixel: every tap but the centre in the padding
    int launches = 0;
    for (const ConvCase& c : cases) launches += check_implicit_conv(c, {1, 3}, {1, 2, 3, 4, 8, 16});
    std::printf("cuda implicit-GEMM 3x3 convolution: %zu shapes, %d launches checked\n", cases.size(), launches);
}

TEST_CASE("the implicit-GEMM 3x3 convolution with split attention's pool in its epilogue matches the CPU and its own "
          "output, at every shape it runs", "[cuda][conv][implicit-gemm]") {
    INFO("seed " << run_seed());
    std::vector<ConvCase> cases;
    for (const ConvCase& c : model_conv_cases())
        if (runs_implicit(c)) cases.push_back(c);
    cases.push_back(case3x3(64, 128, 2, 9, 9));  // 81 positions: a whole tile and a short one an image
    cases.push_back(case3x3(32, 64, 1, 1, 1));   // one pixel
    int launches = 0;
    for (const ConvCase& c : cases) launches += check_implicit_conv_pool(c, {1, 3}, {1, 2, 8});
    std::printf("cuda implicit-GEMM 3x3 convolution with the pool: %zu shapes, %d launches checked\n", cases.size(),
                launches);
}

// Small shapes only, so that the sanitize stage's racecheck (which instruments shared memory and takes
// [ops] but not [conv]) gets through the staging pipeline and the split-K hand-off in seconds.
TEST_CASE("the implicit-GEMM 3x3 convolution on small shapes, one split and several", "[cuda][ops][implicit-gemm]") {
    INFO("seed " << run_seed());
    int launches = 0;
    for (const ConvCase& c : {case3x3(64, 128, 2, 5, 3), case3x3(512, 1024, 2, 7, 7), case3x3(32, 64, 1, 3, 4)})
        launches += check_implicit_conv(c, {1}, {1, 4});
    launches += check_implicit_conv_pool(case3x3(64, 128, 2, 9, 9), {2}, {1, 4});
    CHECK(launches > 0);
}
