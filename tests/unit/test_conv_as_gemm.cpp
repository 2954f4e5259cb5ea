// test_conv_as_gemm.cpp: the matrix-product form of 1x1 convolutions the CUDA backend hands to cuBLASLt,
// checked on the CPU: which convolutions qualify, and that a column-major GEMM with cuBLAS's semantics,
// run over the NHWC activations and OHWI filters with the dimensions and leading dimensions conv_as_gemm
// gives, plus the epilogue (bias, residual, ReLU), computes the convolution the CPU oracle computes; and the
// same for every other convolution over its im2col matrix (im2col_nhwc_host, the CUDA gather's host twin)
// with the dense OHWI filter.
#include <catch2/catch.hpp>

#include <cmath>

#include "conv_as_gemm.h"
#include "cpu/cpu_ops.h"
#include "graph.h"
#include "passes.h"
#include "test_helpers.h"
#include "weight_layout.h"

using namespace resnest;

namespace {

Conv2dAttrs conv1x1(int cin, int cout) {
    Conv2dAttrs a;
    a.in_channels = cin, a.out_channels = cout, a.kernel_h = a.kernel_w = 1;
    return a;
}

// cuBLAS's D = epilogue(op(A) op(B) + beta C) with op(A) = A^T (column-major, lda), op(B) = B (ldb),
// C and D (ldc); the epilogue adds bias[row] and then clamps at zero when relu is set.
// A strided batch (g.batch > 1) runs that per batch q on A + q*stride_a, B + q*stride_b, C/D + q*stride_c
// and bias + q*m.
void gemm_cublas_semantics(const ConvAsGemm& g, const float* a, const float* b, const float* bias, const float* c,
                           bool relu, float* d) {
    for (int64_t q = 0; q < g.batch; q++) {
        const float *aq = a + q * g.stride_a, *bq = b + q * g.stride_b, *cq = c ? c + q * g.stride_c : nullptr;
        const float* biasq = bias + q * g.m;
        float* dq = d + q * g.stride_c;
        for (int64_t j = 0; j < g.n; j++)
            for (int64_t i = 0; i < g.m; i++) {
                double sum = 0.0;
                for (int64_t p = 0; p < g.k; p++) sum += (double)aq[p + i * g.lda] * bq[p + j * g.ldb];
                if (cq) sum += cq[i + j * g.ldc];
                sum += biasq[i];
                dq[i + j * g.ldc] = (float)(relu && sum < 0.0 ? 0.0 : sum);
            }
    }
}



// A convolution case with fresh random NCHW data and its reference output (the direct convolution in
// double, plus the residual z and a ReLU when `residual`).
struct ImCase {
    int n, cin, cout, h, w, k, stride, pad, dilation, groups;
};
struct ImCaseData {
    Conv2dAttrs a;
    int oh = 0, ow = 0;
    std::vector<float> x, w, bias, z, ref;  // (N, Cin, H, W), (Cout, Cin/G, K, K), (Cout), y-shaped, y (NCHW)
};
ImCaseData make_case(const ImCase& c, bool residual) {
    ImCaseData d;
    Conv2dAttrs& a = d.a;
    a.in_channels = c.cin, a.out_channels = c.cout, a.kernel_h = a.kernel_w = c.k;
    a.stride_h = a.stride_w = c.stride, a.pad_h = a.pad_w = c.pad, a.dilation_h = a.dilation_w = c.dilation;
    a.groups = c.groups, a.bias = true;
    d.oh = (c.h + 2 * c.pad - c.dilation * (c.k - 1) - 1) / c.stride + 1;
    d.ow = (c.w + 2 * c.pad - c.dilation * (c.k - 1) - 1) / c.stride + 1;
    const int hw = c.h * c.w, ohw = d.oh * d.ow, cin_g = c.cin / c.groups;
    d.x = test::random_floats((size_t)c.n * c.cin * hw);
    d.w = test::random_floats((size_t)c.cout * cin_g * c.k * c.k);
    d.bias = test::random_floats(c.cout);
    d.z = test::random_floats((size_t)c.n * c.cout * ohw);
    d.ref.resize((size_t)c.n * c.cout * ohw);
    for (int b = 0; b < c.n; b++) {
        float* yb = d.ref.data() + (size_t)b * c.cout * ohw;
        conv2d_direct_double(a, d.x.data() + (size_t)b * c.cin * hw, c.h, c.w, d.w.data(), d.bias.data(), yb, d.oh, d.ow);
        if (residual) {
            add_tensors(yb, d.z.data() + (size_t)b * c.cout * ohw, yb, (int64_t)c.cout * ohw);
            relu_inplace(yb, (int64_t)c.cout * ohw);
        }
    }
    return d;
}


// The product g over (w_ohwi, cols) with d's bias (and residual z + ReLU) against d's reference output.
void check_product(const ConvAsGemm& g, const std::vector<float>& w_ohwi, const std::vector<float>& cols,
                   const ImCase& c, const ImCaseData& d, bool residual) {
    const int ohw = d.oh * d.ow;
    std::vector<float> z_nhwc = test::nchw_to_nhwc(d.z, c.n, c.cout, ohw);
    std::vector<float> y_nhwc((size_t)c.n * ohw * c.cout, NAN);
    gemm_cublas_semantics(g, w_ohwi.data(), cols.data(), d.bias.data(), residual ? z_nhwc.data() : nullptr, residual,
                          y_nhwc.data());
    std::vector<float> want = test::nchw_to_nhwc(d.ref, c.n, c.cout, ohw);
    INFO(c.n << "x" << c.cin << "->" << c.cout << " " << c.h << "x" << c.w << " k" << c.k << " s" << c.stride << " p"
             << c.pad << " d" << c.dilation << " g" << c.groups << (residual ? " residual" : ""));
    CHECK(test::max_rel_error(y_nhwc.data(), want.data(), want.size()) <= 1e-6);
}

}  // namespace

TEST_CASE("conv_window_is_3x3_same takes exactly the 3x3, stride-1, pad-1, undilated windows, any groups", "[gemm]") {
    auto conv3x3 = [] {
        Conv2dAttrs a = conv1x1(64, 128);
        a.kernel_h = a.kernel_w = 3, a.pad_h = a.pad_w = 1;
        return a;
    };
    CHECK(conv_window_is_3x3_same(conv3x3()));
    Conv2dAttrs a = conv3x3();
    a.groups = 2;
    CHECK(conv_window_is_3x3_same(a));
    CHECK_FALSE(conv_window_is_3x3_same(conv1x1(64, 128)));
    a = conv3x3(), a.kernel_w = 1;
    CHECK_FALSE(conv_window_is_3x3_same(a));
    a = conv3x3(), a.stride_h = 2;
    CHECK_FALSE(conv_window_is_3x3_same(a));
    a = conv3x3(), a.stride_w = 2;
    CHECK_FALSE(conv_window_is_3x3_same(a));
    a = conv3x3(), a.pad_h = 0;
    CHECK_FALSE(conv_window_is_3x3_same(a));
    a = conv3x3(), a.pad_w = 2;
    CHECK_FALSE(conv_window_is_3x3_same(a));
    a = conv3x3(), a.dilation_w = 2;
    CHECK_FALSE(conv_window_is_3x3_same(a));
}

TEST_CASE("conv_runs_as_gemm takes exactly the 1x1, stride-1, unpadded, ungrouped convolutions", "[gemm]") {
    CHECK(conv_runs_as_gemm(conv1x1(64, 256)));
    Conv2dAttrs a = conv1x1(64, 256);
    a.kernel_h = a.kernel_w = 3;
    CHECK_FALSE(conv_runs_as_gemm(a));
    a = conv1x1(64, 256), a.stride_h = 2;
    CHECK_FALSE(conv_runs_as_gemm(a));
    a = conv1x1(64, 256), a.stride_w = 2;
    CHECK_FALSE(conv_runs_as_gemm(a));
    a = conv1x1(64, 256), a.pad_w = 1;
    CHECK_FALSE(conv_runs_as_gemm(a));
    a = conv1x1(64, 256), a.dilation_h = 2;
    CHECK_FALSE(conv_runs_as_gemm(a));
    a = conv1x1(64, 256), a.groups = 2;
    CHECK_FALSE(conv_runs_as_gemm(a));
    a.kernel_h = a.kernel_w = 3;
    CHECK_THROWS_WITH(conv_as_gemm(a, 1, 7, 7), Catch::Contains("3x3") && Catch::Contains("2 groups"));
}

TEST_CASE("every 1x1 convolution of the committed models qualifies, and no 3x3 one does", "[gemm]") {
    for (const char* m : {"models/resnest50.json", "models/resnest50_fast_1s1x64d.json", "models/resnest50d_torch.json",
                          "models/resnest50_fast_1s1x64d_torch.json"}) {
        Graph g = graph_load(test::source_path(m));
        int ones = 0, gemms = 0;
        for (const Node& n : g.nodes) {
            if (n.op != OpType::conv2d) continue;
            ones += n.conv.kernel_h == 1;
            gemms += conv_runs_as_gemm(n.conv);
        }
        INFO(m);
        CHECK(ones > 30);  // conv1, conv3 of 16 blocks and the downsample convs (avg pool first)
        CHECK(gemms == ones);
    }
}

TEST_CASE("the column-major product conv_as_gemm describes computes the 1x1 convolution", "[gemm]") {
    struct Case {
        int n, cin, cout, h, w;
    };
    for (Case c : {Case{2, 64, 256, 7, 5}, Case{1, 3, 5, 4, 9}, Case{3, 40, 24, 6, 6}})
        for (bool residual : {false, true}) {
            Conv2dAttrs a = conv1x1(c.cin, c.cout);
            a.bias = true;
            const int hw = c.h * c.w;
            std::vector<float> x = test::random_floats((size_t)c.n * c.cin * hw);   // (N, Cin, H, W)
            std::vector<float> w = test::random_floats((size_t)c.cout * c.cin);      // (Cout, Cin, 1, 1)
            std::vector<float> bias = test::random_floats(c.cout);
            std::vector<float> z = test::random_floats((size_t)c.n * c.cout * hw);  // (N, Cout, H, W)
            std::vector<float> ref((size_t)c.n * c.cout * hw);
            for (int b = 0; b < c.n; b++) {  // the oracle, NCHW
                float* yb = ref.data() + (size_t)b * c.cout * hw;
                conv2d_direct_double(a, x.data() + (size_t)b * c.cin * hw, c.h, c.w, w.data(), bias.data(), yb, c.h,
                                     c.w);
                if (residual) {
                    add_tensors(yb, z.data() + (size_t)b * c.cout * hw, yb, (int64_t)c.cout * hw);
                    relu_inplace(yb, (int64_t)c.cout * hw);
                }
            }
            ConvAsGemm g = conv_as_gemm(a, c.n, c.h, c.w);
            CHECK(g.m == c.cout);
            CHECK(g.n == (int64_t)c.n * hw);
            CHECK(g.k == c.cin);
            std::vector<float> x_nhwc = test::nchw_to_nhwc(x, c.n, c.cin, hw);
            std::vector<float> w_ohwi = conv_weight_oihw_to_ohwi(w, c.cout, c.cin, 1, 1);
            CHECK(conv_gemm_filter_extent(g) == (int64_t)w_ohwi.size());
            CHECK(conv_filter_elements(a, false) == (int64_t)w_ohwi.size());
            std::vector<float> z_nhwc = test::nchw_to_nhwc(z, c.n, c.cout, hw);
            std::vector<float> y_nhwc((size_t)c.n * hw * c.cout, NAN);
            gemm_cublas_semantics(g, w_ohwi.data(), x_nhwc.data(), bias.data(), residual ? z_nhwc.data() : nullptr,
                                  residual, y_nhwc.data());
            std::vector<float> want = test::nchw_to_nhwc(ref, c.n, c.cout, hw);
            INFO(c.n << "x" << c.cin << "->" << c.cout << " " << c.h << "x" << c.w << (residual ? " residual" : ""));
            CHECK(test::max_rel_error(y_nhwc.data(), want.data(), want.size()) <= 1e-6);
        }
}

TEST_CASE("every other convolution is the same product over its im2col matrix and the dense filter", "[gemm]") {
    // ResNeSt's radix conv (3x3, 2 groups), the stem's strided 3x3 on 3 channels, a dilated 3-group conv,
    // a strided 1x1, and a 5x5 window larger than its 2x3 input.
    for (ImCase c : {ImCase{2, 16, 32, 6, 5, 3, 1, 1, 1, 2}, ImCase{1, 3, 8, 9, 7, 3, 2, 1, 1, 1},
                     ImCase{2, 12, 9, 7, 6, 3, 1, 2, 2, 3}, ImCase{1, 8, 4, 5, 5, 1, 2, 0, 1, 1},
                     ImCase{1, 4, 6, 2, 3, 5, 1, 2, 1, 2}})
        for (bool residual : {false, true}) {
            const ImCaseData d = make_case(c, residual);
            const int hw = c.h * c.w, ohw = d.oh * d.ow;
            Im2colShape s = im2col_shape(d.a, c.n, c.h, c.w, d.oh, d.ow);
            ConvAsGemm g = conv_as_im2col_gemm(s, c.cout);
            CHECK(g.m == c.cout);
            CHECK(g.n == (int64_t)c.n * ohw);
            CHECK(g.k == (int64_t)c.k * c.k * c.cin);
            std::vector<float> x_nhwc = test::nchw_to_nhwc(d.x, c.n, c.cin, hw);
            std::vector<float> cols((size_t)(s.rows() * s.cols()), NAN);
            im2col_nhwc_host(x_nhwc.data(), s, cols.data());
            std::vector<float> dense =
                c.groups > 1 ? conv_weight_grouped_to_dense(d.w, c.cout, c.cin, c.groups, c.k, c.k) : d.w;
            std::vector<float> w_ohwi = conv_weight_oihw_to_ohwi(dense, c.cout, c.cin, c.k, c.k);
            CHECK(conv_gemm_filter_extent(g) == (int64_t)w_ohwi.size());  // the whole dense filter, no more
            CHECK(conv_filter_elements(d.a, /*dense=*/true) == (int64_t)w_ohwi.size());
            check_product(g, w_ohwi, cols, c, d, residual);
        }
}

TEST_CASE("a grouped convolution is a strided batch of products, one per group, over its group-major im2col "
          "matrix and the grouped filter as stored", "[gemm]") {
    // ResNeSt's radix conv (2 groups), a dilated 3-group conv, 4 groups over a 5x5 window larger than the input.
    for (ImCase c : {ImCase{2, 16, 32, 6, 5, 3, 1, 1, 1, 2}, ImCase{2, 12, 9, 7, 6, 3, 1, 2, 2, 3},
                     ImCase{1, 8, 12, 2, 3, 5, 2, 2, 1, 4}})
        for (bool residual : {false, true}) {
            const ImCaseData d = make_case(c, residual);
            const int hw = c.h * c.w, cin_g = c.cin / c.groups;
            Im2colShape s = im2col_shape(d.a, c.n, c.h, c.w, d.oh, d.ow, true);
            CHECK(s.groups == c.groups);
            CHECK(s.cols() == (int64_t)c.k * c.k * c.cin);  // the same matrix size as the dense order
            ConvAsGemm g = conv_as_grouped_im2col_gemm(s, c.cout);
            CHECK(g.batch == c.groups);
            CHECK(g.m == c.cout / c.groups);
            CHECK(g.k == (int64_t)c.k * c.k * cin_g);  // no zero blocks: 1/G of the dense reduction
            std::vector<float> x_nhwc = test::nchw_to_nhwc(d.x, c.n, c.cin, hw);
            std::vector<float> cols((size_t)(s.rows() * s.cols()), NAN);
            im2col_nhwc_host(x_nhwc.data(), s, cols.data());
            std::vector<float> w_ohwi = conv_weight_oihw_to_ohwi(d.w, c.cout, cin_g, c.k, c.k);  // (Cout, K, K, Cin/G)
            CHECK(conv_gemm_filter_extent(g) == (int64_t)w_ohwi.size());  // every group's filter, no more
            CHECK(conv_filter_elements(d.a, /*dense=*/false) == (int64_t)w_ohwi.size());
            check_product(g, w_ohwi, cols, c, d, residual);
        }
    // Channels that do not split into the groups are refused, naming the counts.
    Im2colShape bad;
    bad.n = 1, bad.h = bad.w = bad.oh = bad.ow = 2, bad.c = 6, bad.groups = 4;
    CHECK_THROWS_WITH(conv_as_grouped_im2col_gemm(bad, 8), Catch::Contains("6 -> 8 channels") && Catch::Contains("4 groups"));
}

TEST_CASE("split-K is timed only below one wave, within two waves, and never thinner than kMinSplitDepth", "[gemm]") {
    // Layer 4's 1x1 at batch 1: k = 2048, a few tiles (0.03 waves): splits up to 16 (2048 / 32 < 128).
    CHECK(split_k_candidates(2048, 0.03f) == std::vector<int>{2, 4, 8, 16});
    // Layer 4's grouped 3x3 over im2col at batch 1: k = 4608, every split up to 32.
    CHECK(split_k_candidates(4608, 0.03f) == std::vector<int>{2, 4, 8, 16, 32});
    // Half a wave: 2 and 4 keep the grid within two waves.
    CHECK(split_k_candidates(2048, 0.5f) == std::vector<int>{2, 4});
    // A shallow reduction (the stem's 3x3 over 8 channels, k = 72): no part would be 128 deep.
    CHECK(split_k_candidates(72, 0.1f).empty());
    CHECK(split_k_candidates(256, 0.1f) == std::vector<int>{2});
    // A wave or more, or no wave count at all: nothing to gain.
    CHECK(split_k_candidates(4096, 1.0f).empty());
    CHECK(split_k_candidates(4096, 3.0f).empty());
    CHECK(split_k_candidates(4096, 0.0f).empty());
    for (int64_t k : {64, 200, 1152, 4608})
        for (float waves : {0.01f, 0.2f, 0.7f})
            for (int s : split_k_candidates(k, waves)) {
                INFO("k " << k << " waves " << waves << " split " << s);
                CHECK(k / s >= kMinSplitDepth);
                CHECK(waves * s <= 2.0f);
            }
}

TEST_CASE("split-K reduces in float, in place only into a float output of one product, never in the output type",
          "[gemm]") {
    for (bool fp16 : {false, true})
        for (int64_t batch : {1, 2, 32})
            for (int scheme : {0, kReductionInPlace, kReductionComputeType, kReductionOutputType}) {
                INFO("fp16 " << fp16 << " batch " << batch << " scheme " << scheme);
                CHECK(split_k_reduction_allowed(fp16, batch, 1, scheme));  // unsplit: nothing reduced
                for (int split : {2, 8, 32}) {
                    const bool allowed = split_k_reduction_allowed(fp16, batch, split, scheme);
                    CHECK(allowed == (scheme == kReductionComputeType ||
                                      (scheme == kReductionInPlace && !fp16 && batch == 1)));
                }
            }
    // The cases the rule is for: an fp16 output's partial sums, and a strided batch's interleaved columns.
    CHECK_FALSE(split_k_reduction_allowed(true, 1, 8, kReductionOutputType));
    CHECK_FALSE(split_k_reduction_allowed(true, 1, 8, kReductionInPlace));
    CHECK_FALSE(split_k_reduction_allowed(false, 2, 8, kReductionInPlace));
    CHECK(split_k_reduction_allowed(false, 1, 8, kReductionInPlace));
}

TEST_CASE("a split-K choice round-trips through the algorithm cache's math_type field", "[gemm]") {
    CHECK(pack_split_k(1, 2) == 0);  // unsplit: the heuristic candidate as returned, as older entries say
    CHECK(unpacked_split_k(0) == 1);
    CHECK(unpacked_scheme(0) == 0);
    for (int s : {2, 4, 8, 16, 32})
        for (int scheme : {1, 2, 4}) {
            const int packed = pack_split_k(s, scheme);
            CHECK(unpacked_split_k(packed) == s);
            CHECK(unpacked_scheme(packed) == scheme);
        }
}
