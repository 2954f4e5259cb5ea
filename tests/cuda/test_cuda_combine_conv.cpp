// test_cuda_combine_conv.cpp: split attention's weighted sum folded into the 1x1 convolution after it
// (kernels/split_attention_combine_conv1x1.cu) against the CPU: the weighted sum on the host (in double; the
// CPU oracle's avd pool where the case has one; rounded to half as the kernel stages it), then the CPU
// oracle's 1x1 convolution, bias, residual and ReLU.
// At every conv3 shape of both models (radix 2 and 1) and ragged ones (a partial tile, 37 positions, the
// smallest C and Cout), batches 1 and 3, with and without the residual and ReLU, at 1, 2, 4 and the planned
// splits; outputs poisoned and guarded; each launch twice, bit for bit; the tile counts left zero. With the
// avd pool (ResNeSt50's three such blocks, both divisor rules) and without gates as the downsample path's
// average pool + 1x1 convolution, and without either as the runtime's wmma 1x1 convolution way. Small
// shapes in [ops] for the sanitize stage's racecheck.
#include <catch2/catch.hpp>

#include <algorithm>
#include <initializer_list>
#include <thread>
#include <vector>

#include "cpu/cpu_ops.h"
#include "cuda_test_helpers.h"
#include "graph.h"
#include "split_attention_combine_conv1x1.cuh"

using namespace cuda_test;
using resnest::Precision;

namespace {

struct CombineCase {
    int hw, radix, c, cout;
    resnest::CombineAvgPool pool = {};  // with k > 0, hw is the pool's output grid
    bool gated = true;                  // false: attn null (gates of one), the downsample path's pool + conv
};

// The downsample path's 2x2 / 2 average pool (valid cells only) over an in x in grid, then its 1x1
// convolution: no gates, radix 1; ceil mode where `in` is odd (a last window of one row or column).
CombineCase downsample_case(int in, int c, int cout) {
    const int out = (in + 1) / 2;
    return {out * out, 1, c, cout, {2, 2, 0, false, in, in, out}, false};
}

// ResNeSt50's avd pool, 3x3 stride 2 pad 1, over an in x in grid: PyTorch's divisor or Paddle's.
CombineCase avd_case(int in, int radix, int c, int cout, bool include_pad) {
    const int out = (in + 1) / 2;
    return {out * out, radix, c, cout, {3, 2, 1, include_pad, in, in, out}};
}

// Checks the kernel on `k` at each batch and split count (those within its K steps). Returns the launches.
int check_combine_conv(const CombineCase& k, std::initializer_list<int> batches,
                       std::initializer_list<int> splits_list) {
    const int threads = (int)std::max(1u, std::thread::hardware_concurrency());
    int launches = 0;
    for (int n : batches) {
        const resnest::CombineConv1x1Shape s{n, k.hw, k.radix, k.c, k.cout, k.pool};
        REQUIRE(s.fits());
        const int rc = k.radix * k.c, u_hw = s.u_positions();
        const uint64_t salt = (uint64_t)k.hw * 131 + k.radix * 17 + k.c * 7 + k.cout + n + k.pool.include_pad;
        const std::vector<float> u =  // (N, U's HW, R*C)
            round_to_storage(random_floats((size_t)n * u_hw * rc, -1, 1, salt), Precision::fp16);
        const std::vector<float> attn =  // (N, R*C); ones where the kernel is given none
            k.gated ? random_floats((size_t)n * rc, 0.0f, 1.0f, salt + 1) : std::vector<float>((size_t)n * rc, 1.0f);
        const float scale = 1.0f / std::sqrt((float)k.c);
        const std::vector<float> w =
            round_to_storage(random_floats((size_t)k.cout * k.c, -scale, scale, salt + 2), Precision::fp16);
        const std::vector<float> bias = random_floats(k.cout, -0.5f, 0.5f, salt + 3);
        const std::vector<float> z =
            round_to_storage(random_floats((size_t)n * k.hw * k.cout, -1, 1, salt + 4), Precision::fp16);
        // a (N, C, HW) for the oracle: the weighted sum in double (N, C, U's HW), the CPU oracle's average
        // pool where there is one, rounded to half.
        std::vector<float> a((size_t)n * k.c * u_hw);
        for (int b = 0; b < n; b++)
            for (int p = 0; p < u_hw; p++)
                for (int ch = 0; ch < k.c; ch++) {
                    double sum = 0.0;
                    for (int r = 0; r < k.radix; r++) {
                        const size_t at = (size_t)r * k.c + ch;
                        sum += (double)attn[(size_t)b * rc + at] * u[((size_t)b * u_hw + p) * rc + at];
                    }
                    a[((size_t)b * k.c + ch) * u_hw + p] = (float)sum;
                }
        if (s.pooled()) {
            resnest::Pool2dAttrs pa;
            pa.kernel_h = pa.kernel_w = k.pool.k, pa.stride_h = pa.stride_w = k.pool.stride;
            pa.pad_h = pa.pad_w = k.pool.pad, pa.count_include_pad = k.pool.include_pad;
            std::vector<float> pooled((size_t)n * k.c * k.hw);
            for (int b = 0; b < n; b++)
                resnest::avg_pool2d(pa, a.data() + (size_t)b * k.c * u_hw, k.c, k.pool.in_h, k.pool.in_w,
                                    pooled.data() + (size_t)b * k.c * k.hw, k.hw / k.pool.out_w, k.pool.out_w);
            a = pooled;
        }
        a = round_to_storage(a, Precision::fp16);
        resnest::Conv2dAttrs ca;
        ca.in_channels = k.c, ca.out_channels = k.cout, ca.kernel_h = ca.kernel_w = 1;
        std::vector<float> conv((size_t)n * k.cout * k.hw);  // (N, Cout, HW)
        std::vector<float> ws(resnest::conv2d_workspace_floats(ca, 1, k.hw, 1, k.hw) + 1);
        for (int b = 0; b < n; b++)
            resnest::conv2d_im2col_gemm(ca, a.data() + (size_t)b * k.c * k.hw, 1, k.hw, w.data(), nullptr,
                                        conv.data() + (size_t)b * k.cout * k.hw, 1, k.hw, ws.data(), threads);
        const std::vector<float> z_nchw = nhwc_to_nchw(z, n, k.cout, k.hw);
        GuardedBuffer du(u.size(), 2), dattn(attn.size(), 4), dw(w.size(), 2), dbias(bias.size(), 4),
            dz(z.size(), 2), dy(conv.size(), 2);
        du.upload(u), dattn.upload(attn), dw.upload(w), dbias.upload(bias), dz.upload(z);
        float* partial = nullptr;
        int* arrivals = nullptr;
        check(cudaMalloc(&partial, resnest::split_attention_combine_conv1x1_partial_bytes(s, 16) + 16), "partials");
        check(cudaMalloc(&arrivals, s.tiles() * sizeof(int)), "tile counts");
        check(cudaMemset(arrivals, 0, s.tiles() * sizeof(int)), "tile counts");
        const int planned = resnest::split_attention_combine_conv1x1_splits(s, 132);
        for (bool residual : {true, false})
            for (bool relu : {true, false}) {
                std::vector<float> ref = conv;
                for (int b = 0; b < n; b++)
                    for (int o = 0; o < k.cout; o++)
                        for (int p = 0; p < k.hw; p++) {
                            const size_t at = ((size_t)b * k.cout + o) * k.hw + p;
                            float v = ref[at] + bias[o] + (residual ? z_nchw[at] : 0.0f);
                            ref[at] = relu ? std::max(v, 0.0f) : v;
                        }
                std::vector<int> counts(splits_list);
                counts.push_back(planned);
                for (int splits : counts) {
                    if (splits > s.k_steps()) continue;
                    INFO("hw " << k.hw << " radix " << k.radix << " C " << k.c << " Cout " << k.cout << " batch " << n
                               << (residual ? " residual" : "") << (relu ? " relu" : "") << " splits " << splits
                               << " pool k" << k.pool.k << (k.pool.include_pad ? " include_pad" : "")
                               << (k.gated ? "" : " no gates"));
                    std::vector<float> first;
                    for (int rep = 0; rep < 2; rep++) {
                        check(cudaMemset(dy.data(), kPoison, conv.size() * 2), "poison");
                        resnest::split_attention_combine_conv1x1(
                            (const __half*)du.data(), k.gated ? (const float*)dattn.data() : nullptr,
                            (const __half*)dw.data(),
                            (const float*)dbias.data(), residual ? (const __half*)dz.data() : nullptr,
                            (__half*)dy.data(), s, splits, relu, partial, arrivals, resnest::KernelStream(nullptr));
                        check(cudaDeviceSynchronize(), "combine + 1x1 convolution");
                        launches++;
                        std::vector<float> got;
                        std::string why;
                        REQUIRE(dy.download(got, &why));
                        got = nhwc_to_nchw(got, n, k.cout, k.hw);
                        if (rep == 0) {
                            CHECK(max_rel_error(got, ref) <= op_tolerance(Precision::fp16));
                            first = got;
                        } else {
                            CHECK(got == first);
                        }
                    }
                }
            }
        std::vector<int> left(s.tiles(), -1);
        check(cudaMemcpy(left.data(), arrivals, left.size() * sizeof(int), cudaMemcpyDeviceToHost), "counts");
        CHECK(std::count(left.begin(), left.end(), 0) == (long)left.size());
        cudaFree(partial);
        cudaFree(arrivals);
    }
    return launches;
}

// Each case checked at those batches and split counts; the launches.
int check_each(std::initializer_list<CombineCase> cases, std::initializer_list<int> batches,
               std::initializer_list<int> splits_list) {
    int launches = 0;
    for (const CombineCase& k : cases) launches += check_combine_conv(k, batches, splits_list);
    return launches;
}

// The plain 1x1 convolution: neither gates nor pool (the runtime's wmma 1x1 way).
CombineCase plain_case(int hw, int c, int cout) { return {hw, 1, c, cout, {}, false}; }

}  // namespace

TEST_CASE("split attention's weighted sum folded into the 1x1 convolution after it matches the CPU at every conv3 "
          "shape, at every split", "[cuda][conv][implicit-gemm]") {
    INFO("seed " << run_seed());
    const int launches = check_each({CombineCase{3136, 2, 64, 256}, CombineCase{784, 2, 128, 512},
                                     CombineCase{196, 2, 256, 1024}, CombineCase{49, 2, 512, 2048},
                                     CombineCase{3136, 1, 64, 256}, CombineCase{49, 1, 512, 2048},
                                     CombineCase{37, 2, 32, 64}, CombineCase{100, 1, 96, 192}},
                                    {1, 3}, {1, 2, 4});
    std::printf("cuda split-attention combine + 1x1 convolution: %d launches checked\n", launches);
}

TEST_CASE("the fold with ResNeSt50's avd pool after attention matches the CPU at each such block, by either divisor "
          "rule", "[cuda][conv][implicit-gemm]") {
    INFO("seed " << run_seed());
    int launches = 0;
    for (bool include_pad : {true, false})
        launches += check_each({avd_case(56, 2, 128, 512, include_pad), avd_case(28, 2, 256, 1024, include_pad),
                                avd_case(14, 2, 512, 2048, include_pad), avd_case(9, 1, 32, 64, include_pad)},
                               {1, 3}, {1, 2});
    // A ceil-mode 2x2 window (its last row and column clipped to one cell).
    launches += check_combine_conv(CombineCase{9, 2, 64, 64, {2, 2, 0, false, 5, 5, 3}}, {2}, {1});
    std::printf("cuda split-attention combine + avd pool + 1x1 convolution: %d launches checked\n", launches);
}

TEST_CASE("the same kernel without gates, as the downsample path's average pool and 1x1 convolution, matches the "
          "CPU at each such block", "[cuda][conv][implicit-gemm]") {
    INFO("seed " << run_seed());
    const int launches = check_each({downsample_case(56, 256, 512), downsample_case(28, 512, 1024),
                                     downsample_case(14, 1024, 2048), downsample_case(7, 64, 128)},
                                    {1, 3}, {1, 2});
    std::printf("cuda average pool + 1x1 convolution: %d launches checked\n", launches);
}

TEST_CASE("the same kernel without gates or pool, the wmma 1x1 convolution way, matches the CPU at each conv1 "
          "and downsample shape", "[cuda][conv][implicit-gemm]") {
    INFO("seed " << run_seed());
    // conv1 of layers 1-4 (first block and the others), layer 1's downsample, and a ragged one.
    const int launches = check_each({plain_case(3136, 64, 64), plain_case(3136, 256, 64), plain_case(3136, 256, 128),
                                     plain_case(784, 512, 128), plain_case(196, 1024, 256), plain_case(49, 2048, 512),
                                     plain_case(3136, 64, 256), plain_case(37, 96, 64)},
                                    {1, 3}, {1, 4});
    std::printf("cuda wmma 1x1 convolution: %d launches checked\n", launches);
}

// Small shapes only, for the sanitize stage's racecheck ([ops], not [conv]).
TEST_CASE("split attention's weighted sum folded into the 1x1 convolution on small shapes, one split and several",
          "[cuda][ops][implicit-gemm]") {
    INFO("seed " << run_seed());
    const int launches = check_combine_conv(CombineCase{37, 2, 128, 64}, {1}, {1, 2}) +
                         check_combine_conv(avd_case(7, 2, 64, 64, true), {1}, {1, 2}) +
                         check_combine_conv(downsample_case(7, 64, 64), {1}, {1, 2});
    CHECK(launches > 0);
}
