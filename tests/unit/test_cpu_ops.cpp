// test_cpu_ops.cpp: the CPU backend's operators against independent references: GEMM and im2col
// convolution against direct double-precision sums (every conv shape of the committed models plus
// ragged ones), pooling against hand-computed windows, split attention against a literal transcription of
// the reference implementations' reshape/transpose/softmax steps.
#include <catch2/catch.hpp>

#include <cfloat>
#include <set>
#include <tuple>

#include "cpu/cpu_ops.h"
#include "graph.h"
#include "test_helpers.h"

using namespace resnest;

namespace {

// Each |got - ref| must stay within the worst-case float summation bound 2 * K * eps * sum|terms|.
void check_within_sum_bound(const std::vector<float>& got, const std::vector<double>& ref,
                            const std::vector<double>& abs_sum, int terms) {
    REQUIRE(got.size() == ref.size());
    for (size_t i = 0; i < got.size(); i++) {
        INFO("element " << i << " got " << got[i] << " ref " << ref[i]);
        REQUIRE(!std::isnan(got[i]));
        REQUIRE(std::fabs(got[i] - ref[i]) <= 2.0 * (terms + 2) * FLT_EPSILON * abs_sum[i] + 1e-30);
    }
}

void check_gemm(int M, int N, int K, bool accumulate, int threads) {
    INFO("M " << M << " N " << N << " K " << K << " accumulate " << accumulate << " threads " << threads);
    int lda = K + 3, ldb = N + 5, ldc = N + 1;  // padded leading dimensions
    std::vector<float> A = test::random_floats((size_t)M * lda), B = test::random_floats((size_t)K * ldb);
    std::vector<float> C = test::random_floats((size_t)M * ldc);
    std::vector<float> C0 = C;
    std::vector<double> ref(M * N), abs_sum(M * N);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = accumulate ? C0[i * ldc + j] : 0.0, a = accumulate ? std::fabs(C0[i * ldc + j]) : 0.0;
            for (int k = 0; k < K; k++) {
                s += (double)A[i * lda + k] * B[k * ldb + j];
                a += std::fabs((double)A[i * lda + k] * B[k * ldb + j]);
            }
            ref[i * N + j] = s;
            abs_sum[i * N + j] = a;
        }
    cpu_sgemm(M, N, K, A.data(), lda, B.data(), ldb, C.data(), ldc, accumulate, threads);
    std::vector<float> got(M * N);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) got[i * N + j] = C[i * ldc + j];
    check_within_sum_bound(got, ref, abs_sum, K);
    // The padding between rows is untouched.
    for (int i = 0; i < M; i++)
        for (int j = N; j < ldc; j++) REQUIRE(C[i * ldc + j] == C0[i * ldc + j]);
}

void check_conv(const Conv2dAttrs& a, int64_t h, int64_t w, int threads) {
    int64_t oh = (h + 2 * a.pad_h - a.dilation_h * (a.kernel_h - 1) - 1) / a.stride_h + 1;
    int64_t ow = (w + 2 * a.pad_w - a.dilation_w * (a.kernel_w - 1) - 1) / a.stride_w + 1;
    INFO("conv " << a.in_channels << "->" << a.out_channels << " k" << a.kernel_h << "x" << a.kernel_w << " s"
                 << a.stride_h << " p" << a.pad_h << " d" << a.dilation_h << " g" << a.groups << " at " << h << "x" << w);
    int cin_g = a.in_channels / a.groups;
    std::vector<float> x = test::random_floats((size_t)a.in_channels * h * w);
    std::vector<float> wt = test::random_floats((size_t)a.out_channels * cin_g * a.kernel_h * a.kernel_w);
    std::vector<float> bias = test::random_floats(a.out_channels);
    std::vector<float> y((size_t)a.out_channels * oh * ow, NAN);  // poisoned
    std::vector<float> ws(conv2d_workspace_floats(a, h, w, oh, ow) + 1);
    conv2d_im2col_gemm(a, x.data(), h, w, wt.data(), a.bias ? bias.data() : nullptr, y.data(), oh, ow, ws.data(),
                       threads);
    // Reference: direct double sums, and the same sums of |terms| for the error bound (|x|, |w| inputs).
    std::vector<float> ref_f(y.size()), abs_f(y.size());
    std::vector<float> xa(x.size()), wa(wt.size()), ba(bias.size());
    for (size_t i = 0; i < x.size(); i++) xa[i] = std::fabs(x[i]);
    for (size_t i = 0; i < wt.size(); i++) wa[i] = std::fabs(wt[i]);
    for (size_t i = 0; i < bias.size(); i++) ba[i] = std::fabs(bias[i]);
    conv2d_direct_double(a, x.data(), h, w, wt.data(), a.bias ? bias.data() : nullptr, ref_f.data(), oh, ow);
    conv2d_direct_double(a, xa.data(), h, w, wa.data(), a.bias ? ba.data() : nullptr, abs_f.data(), oh, ow);
    std::vector<double> ref(ref_f.begin(), ref_f.end()), abs_sum(abs_f.begin(), abs_f.end());
    // The reference is itself rounded to float once: allow one more ulp of the magnitude.
    for (size_t i = 0; i < abs_sum.size(); i++) abs_sum[i] *= 1.0 + 1e-6;
    check_within_sum_bound(y, ref, abs_sum, cin_g * a.kernel_h * a.kernel_w + 1);
}

Conv2dAttrs conv_attrs(int cin, int cout, int k, int stride, int pad, int dil, int groups, bool bias) {
    Conv2dAttrs a;
    a.in_channels = cin, a.out_channels = cout;
    a.kernel_h = a.kernel_w = k;
    a.stride_h = a.stride_w = stride;
    a.pad_h = a.pad_w = pad;
    a.dilation_h = a.dilation_w = dil;
    a.groups = groups;
    a.bias = bias;
    return a;
}

}  // namespace

TEST_CASE("sgemm matches double sums on ragged shapes, serial and threaded", "[cpu-ops]") {
    for (auto [M, N, K] : std::vector<std::tuple<int, int, int>>{
             {1, 1, 1}, {6, 16, 1}, {7, 17, 3}, {5, 15, 257}, {13, 100, 31}, {121, 49, 300}, {64, 3136, 9},
             {250, 70, 520}, {3, 2000, 40}}) {
        check_gemm(M, N, K, false, 1);
        check_gemm(M, N, K, true, 2);
        check_gemm(M, N, K, false, 3);
    }
}

TEST_CASE("im2col convolution matches direct sums on ragged shapes", "[cpu-ops]") {
    check_conv(conv_attrs(3, 5, 3, 2, 1, 1, 1, false), 9, 7, 2);
    check_conv(conv_attrs(6, 9, 3, 1, 1, 1, 3, true), 5, 6, 1);
    check_conv(conv_attrs(4, 4, 3, 1, 2, 2, 2, false), 8, 8, 2);  // dilated
    check_conv(conv_attrs(8, 6, 1, 2, 0, 1, 2, true), 7, 9, 2);   // strided 1x1 goes through im2col
    check_conv(conv_attrs(8, 6, 1, 1, 0, 1, 1, false), 1, 1, 2);  // 1x1 on a single pixel
    Conv2dAttrs rect = conv_attrs(2, 3, 1, 1, 0, 1, 1, true);
    rect.kernel_h = 1, rect.kernel_w = 3, rect.pad_w = 1, rect.stride_h = 2;
    check_conv(rect, 5, 4, 1);
}

TEST_CASE("im2col convolution matches direct sums at every conv shape of the committed models", "[cpu-ops][slow]") {
    std::set<std::tuple<int, int, int, int, int, int, int64_t, int64_t>> seen;
    for (const char* file : {"models/resnest50.json", "models/resnest50_fast_1s1x64d.json"}) {
        Graph g = graph_load(test::source_path(file));
        for (const Node& n : g.nodes) {
            if (n.op != OpType::conv2d) continue;
            const Shape& x = g.tensors[n.inputs[0]].shape;
            const Conv2dAttrs& a = n.conv;
            auto key = std::make_tuple(a.in_channels, a.out_channels, a.kernel_h, a.stride_h, a.pad_h, a.groups, x[1], x[2]);
            if (!seen.insert(key).second) continue;
            check_conv(a, x[1], x[2], 2);
        }
    }
    CHECK(seen.size() >= 20);
}

TEST_CASE("average pooling divisors: count_include_pad, exclusive, ceil mode", "[cpu-ops]") {
    std::vector<float> x(16);
    for (int i = 0; i < 16; i++) x[i] = (float)(i + 1);  // 4x4: 1..16
    Pool2dAttrs a;
    a.kernel_h = a.kernel_w = 3, a.stride_h = a.stride_w = 2, a.pad_h = a.pad_w = 1;
    std::vector<float> y(4, NAN);
    a.count_include_pad = true;  // official/timm avd pool: always / 9
    avg_pool2d(a, x.data(), 1, 4, 4, y.data(), 2, 2);
    CHECK(y[0] == Approx((1 + 2 + 5 + 6) / 9.0));
    CHECK(y[1] == Approx((2 + 3 + 4 + 6 + 7 + 8) / 9.0));
    CHECK(y[3] == Approx((6 + 7 + 8 + 10 + 11 + 12 + 14 + 15 + 16) / 9.0));
    a.count_include_pad = false;  // PaddleClas exclusive: valid cells only
    avg_pool2d(a, x.data(), 1, 4, 4, y.data(), 2, 2);
    CHECK(y[0] == Approx((1 + 2 + 5 + 6) / 4.0));
    CHECK(y[1] == Approx((2 + 3 + 4 + 6 + 7 + 8) / 6.0));
    CHECK(y[2] == Approx((5 + 6 + 9 + 10 + 13 + 14) / 6.0));
    CHECK(y[3] == Approx(99 / 9.0));

    // 2x2 stride 2, ceil mode, without padding in the divisor (the torch shortcut pool) on 3x3.
    std::vector<float> z(9);
    for (int i = 0; i < 9; i++) z[i] = (float)(i + 1);
    Pool2dAttrs s;
    s.kernel_h = s.kernel_w = s.stride_h = s.stride_w = 2;
    s.ceil_mode = true, s.count_include_pad = false;
    std::vector<float> out(4, NAN);
    avg_pool2d(s, z.data(), 1, 3, 3, out.data(), 2, 2);
    CHECK(out[0] == Approx((1 + 2 + 4 + 5) / 4.0));
    CHECK(out[1] == Approx((3 + 6) / 2.0));
    CHECK(out[2] == Approx((7 + 8) / 2.0));
    CHECK(out[3] == Approx(9.0));
}

TEST_CASE("max pooling never lets padding win", "[cpu-ops]") {
    std::vector<float> x = test::random_floats(2 * 5 * 5, -3.f, -1.f);  // all negative
    Pool2dAttrs a;
    a.kernel_h = a.kernel_w = 3, a.stride_h = a.stride_w = 2, a.pad_h = a.pad_w = 1;
    std::vector<float> y(2 * 3 * 3, NAN);
    max_pool2d(a, x.data(), 2, 5, 5, y.data(), 3, 3);
    for (int c = 0; c < 2; c++)
        for (int oy = 0; oy < 3; oy++)
            for (int ox = 0; ox < 3; ox++) {
                float best = -INFINITY;
                for (int iy = std::max(0, 2 * oy - 1); iy <= std::min(4, 2 * oy + 1); iy++)
                    for (int ix = std::max(0, 2 * ox - 1); ix <= std::min(4, 2 * ox + 1); ix++)
                        best = std::max(best, x[(c * 5 + iy) * 5 + ix]);
                CHECK(y[(c * 3 + oy) * 3 + ox] == best);
                CHECK(best < 0.f);
            }
}

namespace {

// Split attention transcribed from the reference implementations' tensor steps (shared spec §3):
// fc1/fc2 as grouped 1x1 convolutions, rSoftMax as view(K, R, gk) -> transpose -> softmax over R -> flatten
// to radix-major, then out = sum_r attn[r*C + c] * U[r*C + c].
std::vector<double> split_attention_literal(int R, int K, int C, int inter, const std::vector<float>& u, int64_t hw,
                                            const std::vector<float>& w1, const std::vector<float>& b1,
                                            const std::vector<float>& scale, const std::vector<float>& shift,
                                            const std::vector<float>& w2, const std::vector<float>& b2) {
    std::vector<float> gap(C);
    for (int c = 0; c < C; c++) {
        double s = 0;
        for (int r = 0; r < R; r++)
            for (int64_t p = 0; p < hw; p++) s += u[((int64_t)r * C + c) * hw + p];
        gap[c] = (float)(s / hw);
    }
    std::vector<float> h(inter), z(R * C);
    conv2d_direct_double(conv_attrs(C, inter, 1, 1, 0, 1, K, true), gap.data(), 1, 1, w1.data(), b1.data(), h.data(), 1, 1);
    for (int i = 0; i < inter; i++) h[i] = std::max(0.f, h[i] * scale[i] + shift[i]);
    conv2d_direct_double(conv_attrs(inter, R * C, 1, 1, 0, 1, K, true), h.data(), 1, 1, w2.data(), b2.data(), z.data(), 1, 1);
    const int gk = C / K;
    std::vector<double> attn(R * C);  // radix-major after the transpose
    for (int k = 0; k < K; k++)
        for (int c = 0; c < gk; c++) {
            if (R == 1) {
                attn[k * gk + c] = 1.0 / (1.0 + std::exp(-(double)z[k * gk + c]));
                continue;
            }
            double total = 0;
            for (int r = 0; r < R; r++) total += std::exp((double)z[(k * R + r) * gk + c]);
            for (int r = 0; r < R; r++) attn[r * C + k * gk + c] = std::exp((double)z[(k * R + r) * gk + c]) / total;
        }
    std::vector<double> out(C * hw);
    for (int c = 0; c < C; c++)
        for (int64_t p = 0; p < hw; p++) {
            double s = 0;
            for (int r = 0; r < R; r++) s += attn[r * C + c] * u[((int64_t)r * C + c) * hw + p];
            out[c * hw + p] = s;
        }
    return out;
}

}  // namespace

TEST_CASE("split attention matches the literal reshape/transpose/softmax formulation", "[cpu-ops]") {
    for (auto [R, K, C, inter, hw] : std::vector<std::tuple<int, int, int, int, int64_t>>{
             {1, 1, 16, 32, 49}, {2, 1, 12, 32, 9}, {4, 2, 8, 6, 25}, {2, 3, 6, 9, 4}, {3, 2, 10, 4, 1}}) {
        INFO("R " << R << " K " << K << " C " << C << " inter " << inter << " hw " << hw);
        SplitAttentionAttrs a;
        a.radix = R, a.cardinality = K, a.channels = C, a.inter_channels = inter;
        std::vector<float> u = test::random_floats((size_t)R * C * hw, 0.f, 2.f);
        std::vector<float> w1 = test::random_floats(inter * (C / K)), b1 = test::random_floats(inter);
        std::vector<float> scale = test::random_floats(inter, 0.5f, 1.5f), shift = test::random_floats(inter);
        std::vector<float> w2 = test::random_floats(R * C * (inter / K), -2.f, 2.f), b2 = test::random_floats(R * C);
        SplitAttentionWeights w{w1.data(), b1.data(), scale.data(), shift.data(), w2.data(), b2.data()};
        std::vector<float> y(C * hw, NAN);
        split_attention(a, w, u.data(), hw, y.data());
        std::vector<double> ref = split_attention_literal(R, K, C, inter, u, hw, w1, b1, scale, shift, w2, b2);
        for (size_t i = 0; i < y.size(); i++) {
            INFO("element " << i);
            REQUIRE(std::fabs(y[i] - ref[i]) <= 1e-5 * (1 + std::fabs(ref[i])));
        }
    }
}

TEST_CASE("elementwise ops, global pool, linear and softmax", "[cpu-ops]") {
    const int C = 7, HW = 13;
    std::vector<float> x = test::random_floats(C * HW, -2.f, 2.f), scale = test::random_floats(C), shift = test::random_floats(C);
    std::vector<float> y(C * HW, NAN);
    batch_norm_affine(x.data(), scale.data(), shift.data(), C, HW, y.data());
    for (int c = 0; c < C; c++)
        for (int p = 0; p < HW; p++) {
            // One or two roundings (with or without FMA) of x*s + b: error within 2 ulp of |x*s| + |b|.
            double xs = (double)x[c * HW + p] * scale[c];
            REQUIRE(std::fabs(y[c * HW + p] - (xs + shift[c])) <= 2 * FLT_EPSILON * (std::fabs(xs) + std::fabs(shift[c])));
        }
    std::vector<float> r = x;
    relu_inplace(r.data(), C * HW);
    for (int i = 0; i < C * HW; i++) REQUIRE(r[i] == (x[i] > 0 ? x[i] : 0.f));
    float nan_value = NAN;
    relu_inplace(&nan_value, 1);
    CHECK(std::isnan(nan_value));  // ReLU must not hide a NaN
    add_tensors(x.data(), y.data(), r.data(), C * HW);
    for (int i = 0; i < C * HW; i++) REQUIRE(r[i] == x[i] + y[i]);

    std::vector<float> g(C, NAN);
    global_avg_pool(x.data(), C, HW, g.data());
    for (int c = 0; c < C; c++) {
        double s = 0;
        for (int p = 0; p < HW; p++) s += x[c * HW + p];
        REQUIRE(g[c] == Approx(s / HW).margin(1e-6));
    }
    LinearAttrs la;
    la.in_features = C, la.out_features = 5;
    std::vector<float> w = test::random_floats(5 * C), b = test::random_floats(5), out(5, NAN);
    linear(la, g.data(), w.data(), b.data(), out.data());
    for (int o = 0; o < 5; o++) {
        double s = b[o];
        for (int i = 0; i < C; i++) s += (double)w[o * C + i] * g[i];
        REQUIRE(out[o] == Approx(s).margin(1e-6));
    }
    std::vector<float> big = {1000.f, 1001.f, 999.f}, p(3, NAN);  // must not overflow
    softmax_vector(big.data(), 3, p.data());
    CHECK(p[0] + p[1] + p[2] == Approx(1.0));
    CHECK(p[1] == Approx(std::exp(1.0) / (1 + std::exp(1.0) + std::exp(-1.0))));
}
