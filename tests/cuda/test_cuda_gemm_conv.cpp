// test_cuda_gemm_conv.cpp: 1x1 convolutions as one cuBLASLt matmul (runtime/cuda/cuda_gemm_conv.cpp) against
// the CPU oracle at every 1x1 shape of the committed models plus ragged ones, plain (bias) and fused (bias +
// residual + ReLU), in fp32, tf32 and fp16, on poisoned outputs with guard regions, as the timed choice
// leaves them and in every split-K form the choice may time; every other convolution
// shape as im2col + one matmul the same way (and the gathered matrix bit for bit against the host gather).
#include <catch2/catch.hpp>

#include <cublasLt.h>

#include <thread>
#include <utility>
#include <vector>

#include "conv_as_gemm.h"
#include "cpu/cpu_ops.h"
#include "cuda/cuda_gemm_conv.h"
#include "cuda_test_helpers.h"
#include "graph.h"
#include "im2col_nhwc.cuh"
#include "weight_layout.h"

using namespace cuda_test;
using resnest::Precision;

namespace {

struct GemmCase {
    int cin, cout, h, w;
};

// Every distinct 1x1 convolution (input channels, output channels, spatial size) of the four graphs, and
// ragged ones: odd channel counts (alignment below 16 bytes) and a single position.
std::vector<GemmCase> gemm_cases() {
    std::vector<GemmCase> cases;
    for (const ConvCase& c : model_conv_cases())
        if (resnest::conv_runs_as_gemm(c.a)) cases.push_back({c.a.in_channels, c.a.out_channels, c.h, c.w});
    cases.push_back({3, 5, 13, 3});
    cases.push_back({40, 24, 6, 6});
    cases.push_back({64, 128, 1, 1});
    return cases;
}

}  // namespace

TEST_CASE("1x1 convolutions as one cuBLASLt matmul match the CPU at every model shape", "[cuda][ops][gemm]") {
    INFO("seed " << run_seed());
    cublasLtHandle_t lt = nullptr;
    REQUIRE(cublasLtCreate(&lt) == CUBLAS_STATUS_SUCCESS);
    void* workspace = nullptr;
    const size_t ws_bytes = 64ull << 20;
    check(cudaMalloc(&workspace, ws_bytes), "workspace");
    resnest::ConvAlgoCache cache("");
    const int threads = (int)std::max(1u, std::thread::hardware_concurrency());
    int ran = 0, split_ran = 0, fp32_unsupported = 0, restored_ran = 0, edited_refused = 0;
    for (const GemmCase& c : gemm_cases()) {
        resnest::Conv2dAttrs a;
        a.in_channels = c.cin, a.out_channels = c.cout, a.kernel_h = a.kernel_w = 1, a.bias = true;
        const int n = 2, hw = c.h * c.w;
        uint64_t salt = (uint64_t)c.cin * 7919 + c.cout * 31 + hw;
        std::vector<float> x0 = random_floats((size_t)n * c.cin * hw, -1, 1, salt);
        float wscale = 1.0f / std::sqrt((float)c.cin);
        std::vector<float> w0 = random_floats((size_t)c.cout * c.cin, -wscale, wscale, salt + 1);
        std::vector<float> bias0 = random_floats(c.cout, -0.5f, 0.5f, salt + 2);
        std::vector<float> z0 = random_floats((size_t)n * c.cout * hw, -1, 1, salt + 3);
        for (Precision p : {Precision::fp32, Precision::tf32, Precision::fp16})
            for (bool fused : {false, true}) {
                std::vector<float> x = round_to_storage(x0, p), w = round_to_storage(w0, p);
                std::vector<float> bias = round_to_storage(bias0, p), z = round_to_storage(z0, p);
                std::vector<float> ref((size_t)n * c.cout * hw);
                std::vector<float> ws(resnest::conv2d_workspace_floats(a, c.h, c.w, c.h, c.w) + 1);
                for (int b = 0; b < n; b++) {
                    float* yb = ref.data() + (size_t)b * c.cout * hw;
                    resnest::conv2d_im2col_gemm(a, x.data() + (size_t)b * c.cin * hw, c.h, c.w, w.data(), bias.data(),
                                                yb, c.h, c.w, ws.data(), threads);
                    if (fused) {
                        resnest::add_tensors(yb, z.data() + (size_t)b * c.cout * hw, yb, (int64_t)c.cout * hw);
                        resnest::relu_inplace(yb, (int64_t)c.cout * hw);
                    }
                }
                const size_t es = esize_of(p);
                GuardedBuffer dx(x.size(), es), dw(w.size(), es), db(c.cout, es), dz(z.size(), es),
                    dy(ref.size(), es);
                dx.upload(nchw_to_nhwc(x, n, c.cin, hw));
                dw.upload(w);  // (Cout, Cin, 1, 1) is already OHWI
                db.upload(bias), dz.upload(nchw_to_nhwc(z, n, c.cout, hw));
                resnest::ConvProblem prob;
                prob.attrs = a, prob.batch = n, prob.in_h = prob.out_h = c.h, prob.in_w = prob.out_w = c.w;
                prob.relu = fused, prob.has_z = fused, prob.precision = p;
                resnest::ConvBuffers buf{dx.data(), dw.data(), db.data(), nullptr, fused ? dz.data() : nullptr,
                                         dy.data(), workspace, ws_bytes};
                INFO(resnest::precision_name(p) << (fused ? " fused" : " plain") << " 1x1 conv " << c.cin << "->" << c.cout << " "
                                 << c.h << "x" << c.w);
                resnest::GemmConvLaunch gemm;
                std::string why;
                bool described = gemm.describe(prob, buf, "test gemm", &why);
                if (!described && p == Precision::fp32) {  // documented fallback: the node stays on cuDNN
                    fp32_unsupported++;
                    continue;
                }
                INFO(why);
                REQUIRE(described);
                bool from_cache = false;
                const std::string key = std::string(resnest::precision_name(p)) + (fused ? "/f/" : "/p/") +
                                        std::to_string(c.cin) + "/" + std::to_string(c.cout) + "/" + std::to_string(hw);
                const bool chosen = gemm.choose_algorithm(lt, buf, 0, cache, key, &from_cache);
                if (!chosen && p == Precision::fp32) {  // the same fallback, met at the heuristic query instead
                    fp32_unsupported++;
                    continue;
                }
                REQUIRE(chosen);
                CHECK_FALSE(from_cache);
                check(cudaDeviceSynchronize(), "search");
                // A second start: the serialized algorithm comes back from the cache entry (hex, checked against
                // this start's alignments) without the heuristic query, split and reduction included.
                resnest::GemmConvLaunch restored;
                REQUIRE(restored.describe(prob, buf, "test gemm restored", &why));
                bool restored_from_cache = false;
                REQUIRE(restored.choose_algorithm(lt, buf, 0, cache, key, &restored_from_cache));
                CHECK(restored_from_cache);
                CHECK(restored.algorithm() == gemm.algorithm());
                CHECK(restored.split_k() == gemm.split_k());
                check(cudaDeviceSynchronize(), "restore");
                restored_ran += restored_from_cache;
                if (edited_refused == 0) {
                    // Once: the entry's hex with one digit changed (an edited or damaged file) fails its hash
                    // and is chosen afresh, never handed to cuBLASLt.
                    // choose_algorithm's own key (RESNEST_SPLIT_K=off names another).
                    const std::string entry_key = key + (resnest::split_k_search_enabled() ? " split-k" : " split-k off");
                    resnest::ConvAlgoChoice entry;
                    REQUIRE(cache.lookup(entry_key, &entry));
                    REQUIRE(entry.opaque.size() > 10);
                    entry.opaque[10] = entry.opaque[10] == '0' ? '1' : '0';
                    cache.insert(entry_key, entry);
                    resnest::GemmConvLaunch edited;
                    REQUIRE(edited.describe(prob, buf, "test gemm edited", &why));
                    bool edited_from_cache = true;
                    REQUIRE(edited.choose_algorithm(lt, buf, 0, cache, key, &edited_from_cache));
                    CHECK_FALSE(edited_from_cache);
                    check(cudaDeviceSynchronize(), "search after an edited entry");
                    edited_refused++;
                }
                // The timed choice, the same restored (split 0 below), then every split-K form the choice may time
                // (where the grid is under a wave), with each reduction scheme: partial sums in the workspace, or
                // added in place in y.
                std::vector<std::pair<int, int>> forms{{1, 0}, {0, 0}};  // (split, reduction scheme)
                for (int split : {2, 4, 8, 16, 32})
                    for (int scheme : {CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE, CUBLASLT_REDUCTION_SCHEME_INPLACE})
                        forms.push_back({split, scheme});
                for (const auto& [split, scheme] : forms) {
                    if (split > 1 && !gemm.choose_split_k(lt, buf, 0, split, scheme)) continue;
                    const resnest::GemmConvLaunch& call = split == 0 ? restored : gemm;
                    check(cudaDeviceSynchronize(), "split");
                    check(cudaMemset(dy.data(), kPoison, ref.size() * es), "poison");  // the search wrote y
                    check(cudaMemset(workspace, kPoison, ws_bytes), "poison the workspace");  // split-K's partials
                    call.launch(lt, buf, 0);
                    check(cudaDeviceSynchronize(), "gemm");
                    INFO((split == 0 ? "restored: " : "") << "heuristic rank " << call.algorithm() << ", split-K "
                                                          << call.split_k() << ", reduction scheme "
                                                          << (split > 1 ? scheme : 0));
                    std::vector<float> got;
                    REQUIRE(dy.download(got, &why));
                    double err = max_rel_error(nhwc_to_nchw(got, n, c.cout, hw), ref);
                    if (err > op_tolerance(p) / 4)
                        std::printf("cuda gemm conv %s %s %d->%d %dx%d rank %d split-K %d: %.3g\n",
                                    resnest::precision_name(p), fused ? "fused" : "plain", c.cin, c.cout, c.h, c.w,
                                    call.algorithm(), call.split_k(), err);
                    CHECK(err <= op_tolerance(p));
                    if (split > 1) CHECK(gemm.split_k() == split);
                    if (split == 1) ran++;
                    if (split > 1) split_ran++;
                }
            }
    }
    std::printf("cuda gemm conv: %d choices restored from the cache's hex without a heuristic query\n", restored_ran);
    CHECK(restored_ran == ran);
    CHECK(edited_refused == 1);
    // Whether cuBLASLt offers split-K for these products at all (if not, the choice's split-K search is idle).
    std::printf("cuda gemm conv: %d split-K forms checked against the CPU\n", split_ran);
    if (split_ran == 0) WARN("cuBLASLt offered no split-K form for any 1x1 shape at batch 2");
    if (fp32_unsupported)
        std::printf("cuda gemm conv: cuBLASLt has no pedantic fp32 matmul here; %d fp32 cases stay on cuDNN\n",
                    fp32_unsupported);
    CHECK(ran >= (int)gemm_cases().size() * 4);  // tf32 and fp16, plain and fused, at least
    cudaFree(workspace);
    cublasLtDestroy(lt);
}

TEST_CASE("other convolutions as im2col + one cuBLASLt matmul match the CPU at every model shape",
          "[cuda][ops][gemm][im2col]") {
    INFO("seed " << run_seed());
    cublasLtHandle_t lt = nullptr;
    REQUIRE(cublasLtCreate(&lt) == CUBLAS_STATUS_SUCCESS);
    void* workspace = nullptr;
    const size_t ws_bytes = 256ull << 20;
    check(cudaMalloc(&workspace, ws_bytes), "workspace");
    resnest::ConvAlgoCache cache("");
    const int threads = (int)std::max(1u, std::thread::hardware_concurrency());
    std::vector<ConvCase> cases;
    for (const ConvCase& c : model_conv_cases())
        if (!resnest::conv_runs_as_gemm(c.a)) cases.push_back(c);
    auto ragged = [&](int cin, int cout, int k, int stride, int pad, int dilation, int groups, int h, int w) {
        resnest::Conv2dAttrs a;
        a.in_channels = cin, a.out_channels = cout, a.kernel_h = a.kernel_w = k, a.stride_h = a.stride_w = stride;
        a.pad_h = a.pad_w = pad, a.dilation_h = a.dilation_w = dilation, a.groups = groups, a.bias = true;
        const int oh = (h + 2 * pad - dilation * (k - 1) - 1) / stride + 1, ow = (w + 2 * pad - dilation * (k - 1) - 1) / stride + 1;
        cases.push_back({a, h, w, oh, ow});
    };
    ragged(3, 5, 3, 2, 1, 1, 1, 9, 7);     // odd channels: one element a thread
    ragged(24, 36, 3, 1, 2, 2, 3, 6, 5);   // dilation 2, three groups
    ragged(16, 8, 1, 2, 0, 1, 1, 5, 5);    // a strided 1x1 (not a plain matmul)
    ragged(8, 16, 5, 1, 2, 1, 2, 1, 1);    // one pixel, the window mostly padding
    int ran = 0, split_ran = 0, fp32_unsupported = 0, per_group_ran = 0, grouped_cases = 0;
    int per_group_fp32_unsupported = 0;
    for (const ConvCase& c : cases) {
        grouped_cases += c.a.groups > 1;
        const resnest::Conv2dAttrs& a = c.a;
        const int n = 2, cin_g = a.in_channels / a.groups, khw = a.kernel_h * a.kernel_w;
        const int hw = c.h * c.w, ohw = c.oh * c.ow;
        uint64_t salt = (uint64_t)a.in_channels * 7919 + a.out_channels * 31 + hw * 7 + a.groups + khw * 131;
        std::vector<float> x0 = random_floats((size_t)n * a.in_channels * hw, -1, 1, salt);
        float wscale = 1.0f / std::sqrt((float)cin_g * khw);
        std::vector<float> w0 = random_floats((size_t)a.out_channels * cin_g * khw, -wscale, wscale, salt + 1);
        std::vector<float> bias0 = random_floats(a.out_channels, -0.5f, 0.5f, salt + 2);
        std::vector<float> z0 = random_floats((size_t)n * a.out_channels * ohw, -1, 1, salt + 3);
        for (Precision p : {Precision::fp32, Precision::tf32, Precision::fp16})
            for (bool fused : {false, true}) {
                std::vector<float> x = round_to_storage(x0, p), w = round_to_storage(w0, p);
                std::vector<float> bias = round_to_storage(bias0, p), z = round_to_storage(z0, p);
                std::vector<float> ref((size_t)n * a.out_channels * ohw);
                std::vector<float> ws(resnest::conv2d_workspace_floats(a, c.h, c.w, c.oh, c.ow) + 1);
                for (int b = 0; b < n; b++) {
                    float* yb = ref.data() + (size_t)b * a.out_channels * ohw;
                    resnest::conv2d_im2col_gemm(a, x.data() + (size_t)b * a.in_channels * hw, c.h, c.w, w.data(),
                                                bias.data(), yb, c.oh, c.ow, ws.data(), threads);
                    if (fused) {
                        resnest::add_tensors(yb, z.data() + (size_t)b * a.out_channels * ohw, yb,
                                             (int64_t)a.out_channels * ohw);
                        resnest::relu_inplace(yb, (int64_t)a.out_channels * ohw);
                    }
                }
                // The dense filter in OHWI, as the device weight buffer holds it for this way.
                std::vector<float> dense = a.groups > 1 ? resnest::conv_weight_grouped_to_dense(
                                                              w, a.out_channels, a.in_channels, a.groups, a.kernel_h, a.kernel_w)
                                                        : w;
                dense = resnest::conv_weight_oihw_to_ohwi(dense, a.out_channels, a.in_channels, a.kernel_h, a.kernel_w);
                const size_t es = esize_of(p);
                GuardedBuffer dx(x.size(), es), dw(dense.size(), es), db(a.out_channels, es), dz(z.size(), es),
                    dy(ref.size(), es);
                dx.upload(nchw_to_nhwc(x, n, a.in_channels, hw));
                dw.upload(dense), db.upload(bias), dz.upload(nchw_to_nhwc(z, n, a.out_channels, ohw));
                resnest::ConvProblem prob;
                prob.attrs = a, prob.batch = n, prob.in_h = c.h, prob.in_w = c.w, prob.out_h = c.oh, prob.out_w = c.ow;
                prob.relu = fused, prob.has_z = fused, prob.precision = p;
                resnest::ConvBuffers buf{dx.data(), dw.data(), db.data(), nullptr, fused ? dz.data() : nullptr,
                                         dy.data(), workspace, ws_bytes};
                INFO(resnest::precision_name(p) << (fused ? " fused" : " plain") << " " << a.kernel_h << "x" << a.kernel_w
                                                << " conv " << a.in_channels << "->" << a.out_channels << " groups "
                                                << a.groups << " stride " << a.stride_h << " " << c.h << "x" << c.w);
                resnest::GemmConvLaunch gemm;
                std::string why;
                const bool described = gemm.describe(prob, buf, "test im2col gemm", &why, true);
                if (!described && p == Precision::fp32 && why.find("compute type") != std::string::npos) {
                    fp32_unsupported++;  // documented fallback: no pedantic fp32 matmul, the node stays on cuDNN
                    continue;
                }
                INFO(why);
                REQUIRE(described);
                bool from_cache = false;
                const std::string key = std::string(resnest::precision_name(p)) + (fused ? "/f/" : "/p/") +
                                        std::to_string(ran);
                const bool chosen = gemm.choose_algorithm(lt, buf, 0, cache, key, &from_cache);
                if (!chosen && p == Precision::fp32) {  // the same fallback, met at the heuristic query instead
                    fp32_unsupported++;
                    continue;
                }
                REQUIRE(chosen);
                check(cudaDeviceSynchronize(), "search");
                check(cudaMemset(dy.data(), kPoison, ref.size() * es), "poison");
                check(cudaMemset(workspace, kPoison, ws_bytes), "poison the im2col matrix");
                gemm.launch(lt, buf, 0);
                check(cudaDeviceSynchronize(), "im2col + gemm");
                std::vector<float> got;
                REQUIRE(dy.download(got, &why));
                double err = max_rel_error(nhwc_to_nchw(got, n, a.out_channels, ohw), ref);
                CHECK(err <= op_tolerance(p));

                // The gathered matrix itself, against the host gather (a copy: bit-exact).
                resnest::Im2colShape s = resnest::im2col_shape(a, n, c.h, c.w, c.oh, c.ow);
                std::vector<float> want((size_t)(s.rows() * s.cols()));
                std::vector<float> x_nhwc = nchw_to_nhwc(x, n, a.in_channels, hw);
                resnest::im2col_nhwc_host(x_nhwc.data(), s, want.data());
                // Elements of the gathered matrix (at the workspace's front) that differ from the host gather.
                auto cols_mismatches = [&](const std::vector<float>& host) {
                    std::vector<float> cols(host.size());
                    if (p == Precision::fp16) {
                        std::vector<uint16_t> bits(host.size());
                        check(cudaMemcpy(bits.data(), workspace, bits.size() * 2, cudaMemcpyDeviceToHost), "cols");
                        for (size_t i = 0; i < bits.size(); i++) cols[i] = resnest::half_to_float(bits[i]);
                    } else {
                        check(cudaMemcpy(cols.data(), workspace, cols.size() * 4, cudaMemcpyDeviceToHost), "cols");
                    }
                    size_t mismatches = 0;
                    for (size_t i = 0; i < cols.size(); i++) mismatches += !(cols[i] == host[i]);
                    return mismatches;
                };
                CHECK(cols_mismatches(want) == 0);
                ran++;

                // A grouped convolution one matmul per group (a strided batch) over the group-major matrix,
                // with the grouped filter as stored: the same outputs, and the gather bit for bit.
                if (a.groups > 1) {
                    const std::vector<float> grouped_ohwi = resnest::conv_weight_oihw_to_ohwi(
                        w, a.out_channels, a.in_channels / a.groups, a.kernel_h, a.kernel_w);
                    GuardedBuffer dwg(grouped_ohwi.size(), es);
                    dwg.upload(grouped_ohwi);
                    resnest::ConvBuffers gbuf = buf;
                    gbuf.w = dwg.data();
                    resnest::GemmConvLaunch per_group;
                    const bool pg_described =
                        per_group.describe(prob, gbuf, "test im2col gemm per group", &why, true, true);
                    const bool pg_chosen =
                        pg_described && per_group.choose_algorithm(lt, gbuf, 0, cache, key + " per group", &from_cache);
                    if (!pg_chosen && p == Precision::fp32) {  // the documented fallback: another way runs it
                        per_group_fp32_unsupported++;
                    } else {
                        REQUIRE(pg_described);
                        REQUIRE(pg_chosen);
                        CHECK(per_group.batch() == a.groups);
                        check(cudaDeviceSynchronize(), "search per group");
                        check(cudaMemset(dy.data(), kPoison, ref.size() * es), "poison");
                        check(cudaMemset(workspace, kPoison, ws_bytes), "poison the im2col matrix");
                        per_group.launch(lt, gbuf, 0);
                        check(cudaDeviceSynchronize(), "im2col + gemm per group");
                        REQUIRE(dy.download(got, &why));
                        CHECK(max_rel_error(nhwc_to_nchw(got, n, a.out_channels, ohw), ref) <= op_tolerance(p));
                        resnest::Im2colShape gs = resnest::im2col_shape(a, n, c.h, c.w, c.oh, c.ow, true);
                        std::vector<float> want_grouped(want.size());
                        resnest::im2col_nhwc_host(x_nhwc.data(), gs, want_grouped.data());
                        CHECK(cols_mismatches(want_grouped) == 0);
                        per_group_ran++;
                        // Its split-K forms the choice may time: the reduction in float partial sums only (no
                        // in-place reduction in a strided batch, whose products interleave in y).
                        for (int split : {2, 4, 8, 16, 32}) {
                            if (!per_group.choose_split_k(lt, gbuf, 0, split, CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE))
                                continue;
                            check(cudaDeviceSynchronize(), "split per group");
                            check(cudaMemset(dy.data(), kPoison, ref.size() * es), "poison");
                            check(cudaMemset(workspace, kPoison, ws_bytes), "poison the workspace");
                            per_group.launch(lt, gbuf, 0);
                            check(cudaDeviceSynchronize(), "im2col + split-K gemm per group");
                            INFO("per group, split-K " << split);
                            REQUIRE(dy.download(got, &why));
                            CHECK(max_rel_error(nhwc_to_nchw(got, n, a.out_channels, ohw), ref) <= op_tolerance(p));
                            split_ran++;
                        }
                        CHECK_FALSE(per_group.choose_split_k(lt, gbuf, 0, 2, CUBLASLT_REDUCTION_SCHEME_INPLACE));
                    }
                }

                // Every split-K form the choice may time, on a poisoned workspace (where the partial sums or
                // the in-place reduction's counters live).
                for (int split : {2, 4, 8, 16, 32})
                for (int scheme : {CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE, CUBLASLT_REDUCTION_SCHEME_INPLACE}) {
                    if (!gemm.choose_split_k(lt, buf, 0, split, scheme)) continue;
                    check(cudaDeviceSynchronize(), "split");
                    check(cudaMemset(dy.data(), kPoison, ref.size() * es), "poison");
                    check(cudaMemset(workspace, kPoison, ws_bytes), "poison the workspace");
                    gemm.launch(lt, buf, 0);
                    check(cudaDeviceSynchronize(), "im2col + split-K gemm");
                    INFO("split-K " << split << ", reduction scheme " << scheme);
                    REQUIRE(dy.download(got, &why));
                    CHECK(max_rel_error(nhwc_to_nchw(got, n, a.out_channels, ohw), ref) <= op_tolerance(p));
                    split_ran++;
                }
            }
    }
    std::printf("cuda im2col + cuBLASLt: %d split-K forms checked against the CPU\n", split_ran);
    std::printf("cuda im2col + cuBLASLt per group: %d cases of %d grouped shapes checked against the CPU, %d fp32 "
                "without a pedantic matmul\n", per_group_ran, grouped_cases, per_group_fp32_unsupported);
    CHECK(per_group_ran >= grouped_cases * 4);  // tf32 and fp16, plain and fused, at least
    std::printf("cuda im2col + cuBLASLt: %d cases (%zu shapes x 3 precisions x plain/fused), %d fp32 without a "
                "pedantic matmul\n", ran, cases.size(), fp32_unsupported);
    CHECK(ran + fp32_unsupported == (int)cases.size() * 6);
    CHECK(ran >= (int)cases.size() * 4);  // tf32 and fp16, plain and fused, at least
    cudaFree(workspace);
    cublasLtDestroy(lt);
}

TEST_CASE("im2col on buffers that are not 16-byte aligned gathers one element a thread, bit for bit",
          "[cuda][ops][im2col]") {
    INFO("seed " << run_seed());
    // 16 channels would take the 16-byte path on aligned buffers; here x and cols start 2 bytes in.
    resnest::Conv2dAttrs a;
    a.in_channels = 16, a.out_channels = 8, a.kernel_h = a.kernel_w = 3, a.pad_h = a.pad_w = 1;
    const int n = 2, h = 5, w = 7;
    const resnest::Im2colShape s = resnest::im2col_shape(a, n, h, w, h, w);
    const std::vector<float> x = round_to_storage(random_floats((size_t)n * h * w * 16, -1, 1, 77), resnest::Precision::fp16);
    std::vector<float> want((size_t)(s.rows() * s.cols()));
    resnest::im2col_nhwc_host(x.data(), s, want.data());
    std::vector<uint16_t> bits(x.size());
    for (size_t i = 0; i < x.size(); i++) bits[i] = resnest::float_to_half(x[i]);
    __half *dx = nullptr, *dcols = nullptr;
    check(cudaMalloc(&dx, (bits.size() + 1) * 2), "x");
    check(cudaMalloc(&dcols, (want.size() + 1) * 2), "cols");
    check(cudaMemcpy(dx + 1, bits.data(), bits.size() * 2, cudaMemcpyHostToDevice), "upload");
    // Then again asking L2 for "next filters" that start off 16 bytes and are no whole 16 bytes long (x's
    // bytes: a prefetch per 128-byte line), and one of whole 4 KiB pieces and more (cols: bulk prefetches),
    // which must change nothing.
    resnest::L2Prefetch next;
    next.ptr[0] = dx + 1, next.bytes[0] = (long long)bits.size() * 2 - 2;
    next.ptr[1] = dcols, next.bytes[1] = 2 * 4096 + 16;
    for (const resnest::L2Prefetch& ask : {resnest::L2Prefetch{}, next}) {
        const bool asked = ask.ptr[0] != nullptr;
        check(cudaMemset(dcols, 0xFF, (want.size() + 1) * 2), "poison");
        resnest::im2col_nhwc<__half>(dx + 1, dcols + 1, s, resnest::KernelStream(), ask);
        check(cudaDeviceSynchronize(), "im2col on unaligned buffers");
        std::vector<uint16_t> got(want.size());
        check(cudaMemcpy(got.data(), dcols + 1, got.size() * 2, cudaMemcpyDeviceToHost), "download");
        size_t mismatches = 0;
        for (size_t i = 0; i < got.size(); i++) mismatches += !(resnest::half_to_float(got[i]) == want[i]);
        INFO((asked ? "with" : "without") << " next filters asked of L2");
        CHECK(mismatches == 0);
    }
    cudaFree(dx);
    cudaFree(dcols);
}
