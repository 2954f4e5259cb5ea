// test_lab_references.cpp: the CPU references the kernel labs judge their versions by
// (kernels/lab/lab_reference.h), checked against the runtime's CPU oracle (runtime/cpu) on fresh random data:
// pooling in both divisor rules and ceil mode, and split attention's pool -> gate -> weighted sum (with and
// without the avd pool) at radix 1, 2, 4 and cardinality 1, 2; the classifier; a grouped 3x3 convolution.
#include <catch2/catch.hpp>

#include <array>

#include "cpu/cpu_ops.h"
#include "graph.h"
#include "lab/lab_reference.h"
#include "test_helpers.h"

using namespace resnest;

namespace {

// max |got - ref| / max |ref| with the oracle's floats as the reference.
double rel(const std::vector<double>& lab, const std::vector<float>& oracle) {
    std::vector<float> as_float(lab.begin(), lab.end());
    std::vector<double> ref(oracle.begin(), oracle.end());
    return lab::max_rel_error(as_float, ref);
}

}  // namespace

TEST_CASE("lab pooling reference equals the CPU oracle (max, average, both divisor rules, ceil mode)",
          "[lab-reference]") {
    struct Case {
        int n, c, h, w, k, stride, pad;
        bool ceil;
    };
    for (Case cs : {Case{2, 8, 11, 9, 3, 2, 1, false}, Case{1, 5, 8, 10, 3, 2, 1, true}, Case{2, 6, 7, 7, 2, 2, 0, true}})
        for (bool is_max : {true, false})
            for (bool include : {true, false}) {
                Pool2dAttrs a;
                a.kernel_h = a.kernel_w = cs.k, a.stride_h = a.stride_w = cs.stride, a.pad_h = a.pad_w = cs.pad;
                a.ceil_mode = cs.ceil, a.count_include_pad = include;
                auto out = [&](int size) {
                    int span = size + 2 * cs.pad - cs.k;
                    int o = (cs.ceil ? (span + cs.stride - 1) / cs.stride : span / cs.stride) + 1;
                    if (cs.ceil && (o - 1) * cs.stride >= size + cs.pad) o--;  // PyTorch: last window starts inside
                    return o;
                };
                const int oh = out(cs.h), ow = out(cs.w), hw = cs.h * cs.w;
                std::vector<float> x = test::random_floats((size_t)cs.n * cs.c * hw, -2, 2);
                std::vector<float> y((size_t)cs.n * cs.c * oh * ow);
                for (int b = 0; b < cs.n; b++) {
                    const float* xb = x.data() + (size_t)b * cs.c * hw;
                    float* yb = y.data() + (size_t)b * cs.c * oh * ow;
                    if (is_max) max_pool2d(a, xb, cs.c, cs.h, cs.w, yb, oh, ow);
                    else avg_pool2d(a, xb, cs.c, cs.h, cs.w, yb, oh, ow);
                }
                lab::PoolGeometry g{cs.h, cs.w, cs.k, cs.stride, cs.pad, include, oh, ow};
                std::vector<double> got = lab::pool2d_nhwc_ref(test::nchw_to_nhwc(x, cs.n, cs.c, hw), cs.n, cs.c, g, is_max);
                INFO((is_max ? "max" : "avg") << " k" << cs.k << " s" << cs.stride << " p" << cs.pad
                                              << (cs.ceil ? " ceil" : "") << (include ? " include_pad" : ""));
                CHECK(rel(got, test::nchw_to_nhwc(y, cs.n, cs.c, oh * ow)) <= 1e-6);
            }
}

TEST_CASE("lab split attention references (pool, gate, weighted sum, avd pool) equal the CPU oracle",
          "[lab-reference]") {
    struct Case {
        int radix, card, c, inter, h, w;
    };
    for (Case cs : {Case{2, 1, 64, 32, 7, 6}, Case{4, 2, 24, 16, 5, 3}, Case{1, 1, 40, 32, 4, 4}, Case{1, 2, 20, 8, 3, 5},
                    Case{2, 2, 32, 16, 6, 6}}) {
        const int n = 2, R = cs.radix, K = cs.card, C = cs.c, inter = cs.inter, hw = cs.h * cs.w;
        const int gk = C / K, ik = inter / K;
        SplitAttentionAttrs a;
        a.radix = R, a.cardinality = K, a.channels = C, a.inter_channels = inter;
        std::vector<float> u = test::random_floats((size_t)n * R * C * hw, -2, 2);  // (N, R*C, HW)
        std::vector<float> w1 = test::random_floats((size_t)inter * gk, -0.3f, 0.3f), b1 = test::random_floats(inter);
        std::vector<float> scale = test::random_floats(inter, 0.5f, 1.5f), shift = test::random_floats(inter);
        std::vector<float> w2 = test::random_floats((size_t)R * C * ik, -0.5f, 0.5f), b2 = test::random_floats(R * C);
        SplitAttentionWeights sw{w1.data(), b1.data(), scale.data(), shift.data(), w2.data(), b2.data()};
        std::vector<float> y((size_t)n * C * hw);
        for (int b = 0; b < n; b++) split_attention(a, sw, u.data() + (size_t)b * R * C * hw, hw, y.data() + (size_t)b * C * hw);
        // The labs take fc1 with the BN folded in, as the GPU does.
        std::vector<float> w1f(w1.size()), b1f(inter);
        for (int j = 0; j < inter; j++) {
            for (int i = 0; i < gk; i++) w1f[(size_t)j * gk + i] = (float)((double)w1[(size_t)j * gk + i] * scale[j]);
            b1f[j] = (float)((double)b1[j] * scale[j] + shift[j]);
        }
        std::vector<float> u_nhwc = test::nchw_to_nhwc(u, n, R * C, hw);
        std::vector<double> gap = lab::split_attention_pool_ref(u_nhwc, n, hw, R, C);
        std::vector<double> attn = lab::split_attention_gate_ref(gap, w1f, b1f, w2, b2, n, R, K, C, inter);
        std::vector<float> attn_f(attn.begin(), attn.end());
        std::vector<double> got = lab::split_attention_combine_ref(u_nhwc, attn_f, n, hw, R, C);
        INFO("radix " << R << " cardinality " << K << " C " << C << " " << cs.h << "x" << cs.w);
        CHECK(rel(got, test::nchw_to_nhwc(y, n, C, hw)) <= 1e-5);

        // With the avd pool (3x3, stride 2, pad 1, count_include_pad) after it.
        Pool2dAttrs pa;
        pa.kernel_h = pa.kernel_w = 3, pa.stride_h = pa.stride_w = 2, pa.pad_h = pa.pad_w = 1;
        const int oh = (cs.h + 2 - 3) / 2 + 1, ow = (cs.w + 2 - 3) / 2 + 1;
        std::vector<float> pooled((size_t)n * C * oh * ow);
        for (int b = 0; b < n; b++)
            avg_pool2d(pa, y.data() + (size_t)b * C * hw, C, cs.h, cs.w, pooled.data() + (size_t)b * C * oh * ow, oh, ow);
        lab::PoolGeometry g{cs.h, cs.w, 3, 2, 1, true, oh, ow};
        std::vector<double> got_pooled = lab::split_attention_combine_avg_pool_ref(u_nhwc, attn_f, n, R, C, g);
        CHECK(rel(got_pooled, test::nchw_to_nhwc(pooled, n, C, oh * ow)) <= 1e-5);
    }
}

TEST_CASE("lab classifier reference equals the CPU oracle", "[lab-reference]") {
    for (auto [n, in, out] : std::vector<std::array<int, 3>>{{3, 2048, 1000}, {1, 37, 13}}) {
        std::vector<float> x = test::random_floats((size_t)n * in), w = test::random_floats((size_t)out * in, -0.5f, 0.5f);
        std::vector<float> b = test::random_floats(out);
        LinearAttrs a;
        a.in_features = in, a.out_features = out;
        std::vector<float> y((size_t)n * out);
        for (int i = 0; i < n; i++) linear(a, x.data() + (size_t)i * in, w.data(), b.data(), y.data() + (size_t)i * out);
        INFO(n << " x " << in << " -> " << out);
        CHECK(rel(lab::linear_ref(x, w, b, n, in, out), y) <= 1e-6);
        // Without a bias, every output moves by exactly its bias.
        std::vector<double> no_bias = lab::linear_ref(x, w, {}, n, in, out);
        for (size_t i = 0; i < y.size(); i++) no_bias[i] += b[i % out];
        CHECK(rel(no_bias, y) <= 1e-6);
    }
}

TEST_CASE("lab grouped 3x3 convolution reference equals the CPU oracle", "[lab-reference]") {
    for (auto [n, h, w, cin, cout, groups] :
         std::vector<std::array<int, 6>>{{2, 6, 5, 8, 6, 2}, {1, 4, 4, 6, 6, 1}, {1, 3, 7, 12, 8, 4}}) {
        Conv2dAttrs a;
        a.in_channels = cin, a.out_channels = cout, a.kernel_h = a.kernel_w = 3, a.stride_h = a.stride_w = 1;
        a.pad_h = a.pad_w = 1, a.groups = groups;
        const int cin_g = cin / groups;
        std::vector<float> x = test::random_floats((size_t)n * cin * h * w);  // (N, Cin, H, W)
        std::vector<float> wt = test::random_floats((size_t)cout * cin_g * 9, -0.5f, 0.5f);  // (Cout, Cin/g, 3, 3)
        std::vector<float> y((size_t)n * cout * h * w);
        for (int b = 0; b < n; b++)
            conv2d_direct_double(a, x.data() + (size_t)b * cin * h * w, h, w, wt.data(), nullptr,
                                 y.data() + (size_t)b * cout * h * w, h, w);
        // The lab's layouts: x NHWC, w (Cout, 3, 3, Cin/g).
        std::vector<float> x_nhwc = test::nchw_to_nhwc(x, n, cin, h * w), w_ohwi((size_t)cout * 9 * cin_g);
        for (int o = 0; o < cout; o++)
            for (int c = 0; c < cin_g; c++)
                for (int k = 0; k < 9; k++) w_ohwi[((size_t)o * 9 + k) * cin_g + c] = wt[((size_t)o * cin_g + c) * 9 + k];
        std::vector<double> got(y.size());
        for (int b = 0; b < n; b++)
            for (int o = 0; o < cout; o++)
                for (int oy = 0; oy < h; oy++)
                    for (int ox = 0; ox < w; ox++)
                        got[(((size_t)b * cout + o) * h + oy) * w + ox] =
                            lab::grouped_conv3x3_ref(x_nhwc, w_ohwi, h, w, cin, cout, groups, b, oy, ox, o);
        INFO(n << " x " << cin << " -> " << cout << ", " << h << "x" << w << ", groups " << groups);
        CHECK(rel(got, y) <= 1e-6);
    }
}

TEST_CASE("lab 1x1 convolution reference equals the CPU oracle", "[lab-reference]") {
    for (auto [n, h, w, cin, cout] : std::vector<std::array<int, 5>>{{2, 3, 5, 8, 6}, {1, 4, 4, 16, 3}}) {
        Conv2dAttrs a;
        a.in_channels = cin, a.out_channels = cout, a.kernel_h = a.kernel_w = 1, a.stride_h = a.stride_w = 1;
        std::vector<float> x = test::random_floats((size_t)n * cin * h * w);          // (N, Cin, H, W)
        std::vector<float> wt = test::random_floats((size_t)cout * cin, -0.5f, 0.5f);  // (Cout, Cin, 1, 1)
        std::vector<float> y((size_t)n * cout * h * w);
        for (int b = 0; b < n; b++)
            conv2d_direct_double(a, x.data() + (size_t)b * cin * h * w, h, w, wt.data(), nullptr,
                                 y.data() + (size_t)b * cout * h * w, h, w);
        const std::vector<float> x_nhwc = test::nchw_to_nhwc(x, n, cin, h * w);
        std::vector<double> got(y.size());
        for (int b = 0; b < n; b++)
            for (int o = 0; o < cout; o++)
                for (int p = 0; p < h * w; p++)
                    got[((size_t)b * cout + o) * h * w + p] = lab::conv1x1_ref(x_nhwc, wt, cin, (size_t)b * h * w + p, o);
        INFO(n << " x " << cin << " -> " << cout << ", " << h << "x" << w);
        CHECK(rel(got, y) <= 1e-6);
    }
}
