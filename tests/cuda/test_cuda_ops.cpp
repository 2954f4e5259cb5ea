// test_cuda_ops.cpp: the GPU's pooling, elementwise, classifier and layout ops against the CPU oracle
// (runtime/cpu) on fresh random data, at every shape the committed models use plus ragged ones, in fp32 and
// fp16 (split attention: test_cuda_split_attention.cpp; convolutions: test_cuda_conv.cpp,
// test_cuda_gemm_conv.cpp and the other test_cuda_*_conv.cpp).
// Outputs are poisoned (NaN) with guard regions around them; a guard write or an unwritten element fails.
#include <catch2/catch.hpp>

#include <algorithm>
#include <memory>
#include <set>

#include "channel_affine.cuh"
#include "cpu/cpu_ops.h"
#include "cuda_test_helpers.h"
#include "global_avg_pool.cuh"
#include "graph.h"
#include "layout_convert.cuh"
#include "linear_rows.cuh"
#include "pool2d_nhwc.cuh"
#include "softmax_rows.cuh"

using namespace cuda_test;
using resnest::Precision;

namespace {

// ---- pooling -------------------------------------------------------------------------------------------

struct PoolCase {
    resnest::Pool2dAttrs a;
    bool is_max;
    int c, h, w, oh, ow;
};

std::vector<PoolCase> pool_cases() {
    std::vector<PoolCase> cases;
    std::set<std::string> seen;
    for (const resnest::Graph* g : model_graphs())
        for (const resnest::Node& n : g->nodes) {
            if (n.op != resnest::OpType::max_pool2d && n.op != resnest::OpType::avg_pool2d) continue;
            const auto& x = g->tensors[n.inputs[0]].shape;
            const auto& y = g->tensors[n.output].shape;
            PoolCase c{n.pool, n.op == resnest::OpType::max_pool2d, (int)x[0], (int)x[1], (int)x[2], (int)y[1], (int)y[2]};
            std::string key = std::to_string(c.is_max) + resnest::shape_str(x) + std::to_string(n.pool.kernel_h) +
                              std::to_string(n.pool.stride_h) + std::to_string(n.pool.pad_h) +
                              std::to_string(n.pool.ceil_mode) + std::to_string(n.pool.count_include_pad);
            if (seen.insert(key).second) cases.push_back(c);
        }
    // Ragged: odd sizes, ceil mode with a clipped last window, both divisor rules, channel counts that are
    // no multiple of anything (the one-channel-per-thread kernels) and 24 (the vectorised ones).
    for (bool include : {true, false})
        for (bool is_max : {true, false}) {
            resnest::Pool2dAttrs a;
            a.kernel_h = a.kernel_w = 3, a.stride_h = a.stride_w = 2, a.pad_h = a.pad_w = 1;
            a.ceil_mode = true, a.count_include_pad = include;
            cases.push_back({a, is_max, 5, 8, 10, 5, 6});  // ceil((8+2-3)/2)+1 = 5, ceil((10+2-3)/2)+1 = 6
            resnest::Pool2dAttrs b;
            b.kernel_h = b.kernel_w = 2, b.stride_h = b.stride_w = 2, b.ceil_mode = true, b.count_include_pad = include;
            cases.push_back({b, is_max, 7, 7, 9, 4, 5});
            cases.push_back({a, is_max, 24, 8, 10, 5, 6});  // 16-byte channel groups (8 halves, 4 floats) on a ragged map
        }
    return cases;
}

}  // namespace

TEST_CASE("max and average pooling match the CPU at every model shape and ragged ones", "[cuda][ops]") {
    INFO("seed " << run_seed());
    for (Precision p : {Precision::fp32, Precision::fp16}) {
        for (const PoolCase& c : pool_cases()) {
            const int n = 2, hw = c.h * c.w, ohw = c.oh * c.ow;
            std::vector<float> x = round_to_storage(random_floats((size_t)n * c.c * hw, -3, 3, hw + c.c), p);
            std::vector<float> ref((size_t)n * c.c * ohw);
            for (int b = 0; b < n; b++) {
                const float* xb = x.data() + (size_t)b * c.c * hw;
                float* yb = ref.data() + (size_t)b * c.c * ohw;
                if (c.is_max) resnest::max_pool2d(c.a, xb, c.c, c.h, c.w, yb, c.oh, c.ow);
                else resnest::avg_pool2d(c.a, xb, c.c, c.h, c.w, yb, c.oh, c.ow);
            }
            // Where the channels take 16-byte vectors, x and then y also one element off their 16-byte
            // boundary: the one-element kernel.
            const bool vectors = c.c % (p == Precision::fp16 ? 8 : 4) == 0;
            for (int skewed : {0, 1, 2}) {
                if (skewed && !vectors) continue;
                const size_t es = esize_of(p);
                GuardedBuffer dx(x.size(), es, skewed == 1 ? es : 0), dy(ref.size(), es, skewed == 2 ? es : 0);
                dx.upload(nchw_to_nhwc(x, n, c.c, hw));
                resnest::Pool2dShape s{n, c.h, c.w, c.c, c.oh, c.ow, c.a.kernel_h, c.a.kernel_w, c.a.stride_h,
                                       c.a.stride_w, c.a.pad_h, c.a.pad_w, c.a.count_include_pad};
                if (p == Precision::fp16) {
                    if (c.is_max) resnest::max_pool2d_nhwc<__half>((const __half*)dx.data(), (__half*)dy.data(), s, 0);
                    else resnest::avg_pool2d_nhwc<__half>((const __half*)dx.data(), (__half*)dy.data(), s, 0);
                } else {
                    if (c.is_max) resnest::max_pool2d_nhwc<float>((const float*)dx.data(), (float*)dy.data(), s, 0);
                    else resnest::avg_pool2d_nhwc<float>((const float*)dx.data(), (float*)dy.data(), s, 0);
                }
                check(cudaDeviceSynchronize(), "pool");
                std::vector<float> got;
                std::string why;
                INFO(pname(p) << (c.is_max ? " max" : " avg") << " pool C=" << c.c << " " << c.h << "x" << c.w
                              << " k" << c.a.kernel_h << " s" << c.a.stride_h << " p" << c.a.pad_h << " ceil "
                              << c.a.ceil_mode << " include_pad " << c.a.count_include_pad
                              << (skewed == 1 ? ", x off 16 bytes" : skewed == 2 ? ", y off 16 bytes" : ""));
                REQUIRE(dy.download(got, &why));
                CHECK(max_rel_error(nhwc_to_nchw(got, n, c.c, ohw), ref) <= op_tolerance(p));
            }
        }
    }
}

TEST_CASE("global average pool matches the CPU", "[cuda][ops]") {
    INFO("seed " << run_seed());
    for (Precision p : {Precision::fp32, Precision::fp16})
        for (auto [c, hw] : std::vector<std::pair<int, int>>{{2048, 49}, {2048, 64}, {5, 15}, {33, 1}}) {
            const int n = 3;
            std::vector<float> x = round_to_storage(random_floats((size_t)n * c * hw, -2, 2, c * 7 + hw), p);
            std::vector<float> ref((size_t)n * c);
            for (int b = 0; b < n; b++) resnest::global_avg_pool(x.data() + (size_t)b * c * hw, c, hw, ref.data() + b * c);
            GuardedBuffer dx(x.size(), esize_of(p)), dy(ref.size(), esize_of(p));
            dx.upload(nchw_to_nhwc(x, n, c, hw));
            if (p == Precision::fp16)
                resnest::global_avg_pool_nhwc<__half>((const __half*)dx.data(), (__half*)dy.data(), n, hw, c, 0);
            else
                resnest::global_avg_pool_nhwc<float>((const float*)dx.data(), (float*)dy.data(), n, hw, c, 0);
            check(cudaDeviceSynchronize(), "gap");
            std::vector<float> got;
            std::string why;
            INFO(pname(p) << " C=" << c << " HW=" << hw);
            REQUIRE(dy.download(got, &why));
            CHECK(max_rel_error(got, ref) <= op_tolerance(p));
        }
}

TEST_CASE("channel affine (batch norm, ReLU, residual add) and softmax match the CPU", "[cuda][ops]") {
    INFO("seed " << run_seed());
    for (Precision p : {Precision::fp32, Precision::fp16})
        for (int c : {64, 7, 2048}) {
            const int n = 2, hw = 13;
            const size_t count = (size_t)n * c * hw;
            std::vector<float> x = round_to_storage(random_floats(count, -3, 3, c), p);
            std::vector<float> z = round_to_storage(random_floats(count, -3, 3, c + 1), p);
            std::vector<float> scale = random_floats(c, 0.2f, 2.0f, c + 2), shift = random_floats(c, -1, 1, c + 3);
            std::vector<float> ref(count);
            for (int b = 0; b < n; b++) {
                const size_t off = (size_t)b * c * hw;
                resnest::batch_norm_affine(x.data() + off, scale.data(), shift.data(), c, hw, ref.data() + off);
                resnest::add_tensors(ref.data() + off, z.data() + off, ref.data() + off, (int64_t)c * hw);
                resnest::relu_inplace(ref.data() + off, (int64_t)c * hw);
            }
            GuardedBuffer dx(count, esize_of(p)), dz(count, esize_of(p)), dy(count, esize_of(p));
            GuardedBuffer ds(c, 4), dt(c, 4);
            dx.upload(nchw_to_nhwc(x, n, c, hw)), dz.upload(nchw_to_nhwc(z, n, c, hw));
            ds.upload(scale), dt.upload(shift);
            if (p == Precision::fp16)
                resnest::channel_affine_activation<__half>((const __half*)dx.data(), (const float*)ds.data(),
                                                           (const float*)dt.data(), (const __half*)dz.data(),
                                                           (__half*)dy.data(), (long long)count, c, true, 0);
            else
                resnest::channel_affine_activation<float>((const float*)dx.data(), (const float*)ds.data(),
                                                          (const float*)dt.data(), (const float*)dz.data(),
                                                          (float*)dy.data(), (long long)count, c, true, 0);
            check(cudaDeviceSynchronize(), "affine");
            std::vector<float> got;
            std::string why;
            INFO(pname(p) << " affine+residual+relu C=" << c);
            REQUIRE(dy.download(got, &why));
            CHECK(max_rel_error(nhwc_to_nchw(got, n, c, hw), ref) <= op_tolerance(p));
        }
    for (Precision p : {Precision::fp32, Precision::fp16})
        for (auto [rows, cols] : std::vector<std::pair<int, int>>{{2, 1000}, {3, 17}, {1, 1}}) {
            std::vector<float> x = round_to_storage(random_floats((size_t)rows * cols, -6, 6, cols), p);
            std::vector<float> ref(x.size());
            for (int r = 0; r < rows; r++) resnest::softmax_vector(x.data() + (size_t)r * cols, cols, ref.data() + (size_t)r * cols);
            GuardedBuffer dx(x.size(), esize_of(p)), dy(x.size(), esize_of(p));
            dx.upload(x);
            if (p == Precision::fp16)
                resnest::softmax_rows_block_per_row<__half>((const __half*)dx.data(), (__half*)dy.data(), rows, cols, 0);
            else
                resnest::softmax_rows_block_per_row<float>((const float*)dx.data(), (float*)dy.data(), rows, cols, 0);
            check(cudaDeviceSynchronize(), "softmax");
            std::vector<float> got;
            std::string why;
            INFO(pname(p) << " softmax " << rows << "x" << cols);
            REQUIRE(dy.download(got, &why));
            CHECK(max_rel_error(got, ref) <= op_tolerance(p));
        }
}

TEST_CASE("the small-batch classifier (warp per output row, bias fused) matches the CPU", "[cuda][ops]") {
    INFO("seed " << run_seed());
    struct LinearCase {
        int n, in, out;
        bool bias, misaligned;  // misaligned: x starts one element past a 16-byte boundary (the scalar path)
    };
    std::vector<LinearCase> cases;
    for (int n : {1, 3, 8, 11, 20}) cases.push_back({n, 2048, 1000, true, false});  // ResNeSt's classifier
    cases.push_back({5, 37, 13, true, false});    // a row length no multiple of 16 bytes
    cases.push_back({9, 2048, 7, false, true});   // no bias; unaligned input
    cases.push_back({2, 64, 9, true, true});
    for (Precision p : {Precision::fp32, Precision::fp16})
        for (const LinearCase& c : cases) {
            const size_t skip = c.misaligned ? 1 : 0;
            std::vector<float> x = round_to_storage(random_floats((size_t)c.n * c.in + skip, -1, 1, c.in + c.n), p);
            std::vector<float> w = round_to_storage(random_floats((size_t)c.out * c.in, -0.5f, 0.5f, c.out), p);
            std::vector<float> b = random_floats(c.out, -2, 2, c.out + 1);
            std::vector<float> ref((size_t)c.n * c.out);
            resnest::LinearAttrs a;
            a.in_features = c.in, a.out_features = c.out;
            for (int i = 0; i < c.n; i++)
                resnest::linear(a, x.data() + skip + (size_t)i * c.in, w.data(), c.bias ? b.data() : nullptr,
                                ref.data() + (size_t)i * c.out);
            GuardedBuffer dx(x.size(), esize_of(p)), dw(w.size(), esize_of(p)), db(b.size(), 4), dy(ref.size(), esize_of(p));
            dx.upload(x), dw.upload(w), db.upload(b);
            const void* xp = (const unsigned char*)dx.data() + skip * esize_of(p);
            const float* bp = c.bias ? (const float*)db.data() : nullptr;
            CHECK(resnest::linear_rows_vectorized(xp, dw.data(), c.in, (int)esize_of(p)) ==
                  (!c.misaligned && c.in % (16 / (int)esize_of(p)) == 0));
            if (p == Precision::fp16)
                resnest::linear_bias_warp_per_output_row<__half>((const __half*)xp, (const __half*)dw.data(), bp,
                                                                 (__half*)dy.data(), c.n, c.in, c.out, 0);
            else
                resnest::linear_bias_warp_per_output_row<float>((const float*)xp, (const float*)dw.data(), bp,
                                                                (float*)dy.data(), c.n, c.in, c.out, 0);
            check(cudaDeviceSynchronize(), "linear");
            std::vector<float> got;
            std::string why;
            INFO(pname(p) << " linear n=" << c.n << " " << c.in << " -> " << c.out << (c.bias ? "" : " no bias")
                          << (c.misaligned ? " misaligned" : ""));
            REQUIRE(dy.download(got, &why));
            CHECK(max_rel_error(got, ref) <= op_tolerance(p));
        }
}

TEST_CASE("layout conversion at the edges round-trips exactly in fp32, and a padded input gets zero channels",
          "[cuda][ops]") {
    const int n = 2, c = 3, hw = 224 * 224;
    std::vector<float> x = random_floats((size_t)n * c * hw, -2, 2, 77);
    GuardedBuffer dx(x.size(), 4), dt(x.size(), 4), dy(x.size(), 4);
    dx.upload(x);
    resnest::nchw_float_to_nhwc<float>((const float*)dx.data(), (float*)dt.data(), n, c, c, hw, 0);
    resnest::nhwc_to_nchw_float<float>((const float*)dt.data(), (float*)dy.data(), n, c, hw, 0);
    check(cudaDeviceSynchronize(), "layout");
    std::vector<float> mid, back;
    std::string why;
    REQUIRE(dt.download(mid, &why));
    REQUIRE(dy.download(back, &why));
    CHECK(mid == nchw_to_nhwc(x, n, c, hw));
    CHECK(back == x);

    // Padded to 4 floats / 8 halves (the 16-byte pixel kernel) and to 6 (the element kernel), as a
    // dependent launch: channels < C hold the input (rounded to half in fp16), the rest exact zeros.
    const int odd_hw = 37 * 41;
    std::vector<float> xs = random_floats((size_t)n * c * odd_hw, -2, 2, 78);
    GuardedBuffer dxs(xs.size(), 4);
    dxs.upload(xs);
    // The 16-byte padding once more into an output one element off its 16-byte boundary: the element kernel.
    for (Precision p : {Precision::fp32, Precision::fp16})
        for (int padded : {p == Precision::fp16 ? 8 : 4, 6, -(p == Precision::fp16 ? 8 : 4)}) {
            const int es = p == Precision::fp16 ? 2 : 4;
            const bool skewed = padded < 0;
            padded = std::abs(padded);
            GuardedBuffer dp((size_t)n * odd_hw * padded, es, skewed ? es : 0);
            resnest::KernelStream ks(0, true);
            if (p == Precision::fp16)
                resnest::nchw_float_to_nhwc<__half>((const float*)dxs.data(), (__half*)dp.data(), n, c, padded, odd_hw, ks);
            else
                resnest::nchw_float_to_nhwc<float>((const float*)dxs.data(), (float*)dp.data(), n, c, padded, odd_hw, ks);
            check(cudaDeviceSynchronize(), "padded layout");
            std::vector<float> got;
            REQUIRE(dp.download(got, &why));
            std::vector<float> want = nchw_to_nhwc(xs, n, c, odd_hw);
            int wrong = 0;
            for (int i = 0; i < n * odd_hw; i++)
                for (int ch = 0; ch < padded; ch++) {
                    float v = got[(size_t)i * padded + ch];
                    float e = ch < c ? want[(size_t)i * c + ch] : 0.0f;
                    if (p == Precision::fp16 && ch < c) wrong += std::fabs(v - e) > 1e-3f * std::fabs(e) + 1e-7f;
                    else wrong += !(v == e);
                }
            INFO(pname(p) << " padded to " << padded << (skewed ? ", y off 16 bytes" : ""));
            CHECK(wrong == 0);
        }
}
