// test_cuda_conv.cpp: convolutions on the GPU against the CPU oracle at every convolution shape of the
// committed models plus ragged ones, with bias, bias + ReLU and bias + residual + ReLU, in fp32, tf32 and
// fp16, on poisoned outputs with guard regions: cuDNN's legacy call (runtime/cuda/cuda_conv.cpp) and cuDNN's
// operation graph (runtime/cuda/cuda_graph_conv.cpp) on the same data, and that plan rebuilt from the cached
// engine; a bit-exact grouped convolution with an implicit-GEMM algorithm pinned; and how each way's choice
// times a short call (graph replays on a stream that can be captured, counted).
#include <catch2/catch.hpp>
#include <cublasLt.h>
#include <cudnn.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <thread>
#include <tuple>

#include "cpu/cpu_ops.h"
#include "cuda/cuda_conv.h"
#include "cuda/cuda_gemm_conv.h"
#include "cuda/cuda_graph_conv.h"
#include "cuda/cuda_timing.h"
#include "cuda_test_helpers.h"
#include "weight_layout.h"

using namespace cuda_test;
using resnest::Precision;

namespace {

std::vector<ConvCase> conv_cases() {
    std::vector<ConvCase> cases = model_conv_cases();
    auto ragged = [&](int cin, int cout, int k, int s, int pad, int g, int h, int w) {
        resnest::Conv2dAttrs a;
        a.in_channels = cin, a.out_channels = cout, a.kernel_h = a.kernel_w = k, a.stride_h = a.stride_w = s;
        a.pad_h = a.pad_w = pad, a.groups = g;
        cases.push_back({a, h, w, (h + 2 * pad - k) / s + 1, (w + 2 * pad - k) / s + 1});
    };
    ragged(6, 10, 3, 2, 1, 2, 9, 7);
    ragged(12, 24, 3, 1, 1, 4, 5, 11);
    ragged(3, 5, 1, 1, 0, 1, 13, 3);
    ragged(40, 80, 3, 1, 1, 8, 6, 6);
    ragged(8, 16, 3, 2, 1, 2, 9, 7);  // stride 2 on odd sizes, grouped
    return cases;
}

struct CudnnHandle {
    cudnnHandle_t h = nullptr;
    CudnnHandle() { REQUIRE(cudnnCreate(&h) == CUDNN_STATUS_SUCCESS); }
    ~CudnnHandle() { cudnnDestroy(h); }
};

}  // namespace

TEST_CASE("convolutions (bias, bias + ReLU, bias + residual + ReLU) match the CPU at every model shape, through "
          "cuDNN's legacy call and its operation graph (whole, and per group)", "[cuda][ops][conv]") {
    INFO("seed " << run_seed());
    CudnnHandle handle;
    void* workspace = nullptr;
    const size_t ws_bytes = 128ull << 20;
    check(cudaMalloc(&workspace, ws_bytes), "workspace");
    resnest::ConvAlgoCache cache("");
    const int threads = (int)std::max(1u, std::thread::hardware_concurrency());
    int graph_planned = 0, graph_unplanned = 0, group_planned = 0, group_unplanned = 0, restored = 0;
    for (const ConvCase& c : conv_cases()) {
        const resnest::Conv2dAttrs& a = c.a;
        const int n = 2, cin = a.in_channels, cout = a.out_channels, hw = c.h * c.w, ohw = c.oh * c.ow;
        const int cpg = cin / a.groups;
        uint64_t salt = (uint64_t)cin * 7919 + cout * 31 + hw + a.groups * 7 + a.stride_h;
        std::vector<float> x0 = random_floats((size_t)n * cin * hw, -1, 1, salt);
        float wscale = 1.0f / std::sqrt((float)(cpg * a.kernel_h * a.kernel_w));
        std::vector<float> w0 = random_floats((size_t)cout * cpg * a.kernel_h * a.kernel_w, -wscale, wscale, salt + 1);
        std::vector<float> bias0 = random_floats(cout, -0.5f, 0.5f, salt + 2);
        std::vector<float> z0 = random_floats((size_t)n * cout * ohw, -1, 1, salt + 3);
        for (Precision p : {Precision::fp32, Precision::tf32, Precision::fp16})
            for (int variant = 0; variant < 3; variant++) {
                const bool relu = variant >= 1, residual = variant == 2;
                const char* vname = variant == 0 ? "bias" : variant == 1 ? "bias+relu" : "bias+residual+relu";
                std::vector<float> x = round_to_storage(x0, p), w = round_to_storage(w0, p);
                std::vector<float> bias = round_to_storage(bias0, p), z = round_to_storage(z0, p);
                std::vector<float> ref((size_t)n * cout * ohw);
                std::vector<float> ws(resnest::conv2d_workspace_floats(a, c.h, c.w, c.oh, c.ow) + 1);
                for (int b = 0; b < n; b++) {
                    float* yb = ref.data() + (size_t)b * cout * ohw;
                    resnest::conv2d_im2col_gemm(a, x.data() + (size_t)b * cin * hw, c.h, c.w, w.data(), bias.data(),
                                                yb, c.oh, c.ow, ws.data(), threads);
                    if (residual) resnest::add_tensors(yb, z.data() + (size_t)b * cout * ohw, yb, (int64_t)cout * ohw);
                    if (relu) resnest::relu_inplace(yb, (int64_t)cout * ohw);
                }
                const size_t es = esize_of(p);
                GuardedBuffer dx(x.size(), es), dw(w.size(), es), db(cout, es), dbf(cout, 4), dz(z.size(), es),
                    dy(ref.size(), es);
                dx.upload(nchw_to_nhwc(x, n, cin, hw));
                dw.upload(resnest::conv_weight_oihw_to_ohwi(w, cout, cpg, a.kernel_h, a.kernel_w));
                db.upload(bias), dbf.upload(bias), dz.upload(nchw_to_nhwc(z, n, cout, ohw));
                resnest::ConvProblem prob;
                prob.attrs = a, prob.batch = n, prob.in_h = c.h, prob.in_w = c.w, prob.out_h = c.oh, prob.out_w = c.ow;
                prob.relu = relu, prob.has_z = residual, prob.precision = p;
                resnest::ConvBuffers buf{dx.data(), dw.data(), db.data(), (const float*)dbf.data(),
                                         residual ? dz.data() : nullptr, dy.data(), workspace, ws_bytes};
                INFO(pname(p) << " " << vname << " conv " << cin << "->" << cout << " k" << a.kernel_h << " s"
                              << a.stride_h << " p" << a.pad_h << " g" << a.groups << " " << c.h << "x" << c.w);
                const std::string key = std::string(pname(p)) + "/" + vname + "/" + std::to_string(salt);
                std::string why;
                std::vector<float> got;

                // cuDNN's legacy call
                resnest::ConvLaunch conv;
                conv.describe(prob, "test conv");
                conv.choose_algorithm(handle.h, buf, cache, key);
                check(cudaDeviceSynchronize(), "search");
                check(cudaMemset(dy.data(), kPoison, ref.size() * es), "poison");  // the search wrote y
                conv.launch(handle.h, buf, 0);
                check(cudaDeviceSynchronize(), "conv");
                REQUIRE(dy.download(got, &why));
                double err = max_rel_error(nhwc_to_nchw(got, n, cout, ohw), ref);
                INFO("legacy algorithm " << conv.algorithm() << ", rel err " << err);
                if (err > op_tolerance(p) / 4)
                    std::printf("cuda conv %s %s %d->%d k%d s%d g%d %dx%d algo %d: %.3g\n", pname(p), vname, cin, cout,
                                a.kernel_h, a.stride_h, a.groups, c.h, c.w, conv.algorithm(), err);
                CHECK(err <= op_tolerance(p));

                // cuDNN's operation graph on the same data: the whole node, and for a grouped convolution one
                // group at a time on its channel slices.
                for (bool per_group : {false, true}) {
                    if (per_group && a.groups < 2) continue;
                    resnest::GraphConvLaunch graph;
                    if (!graph.describe(prob, handle.h, "test graph conv", &why, per_group)) {
                        INFO(why);
                        CHECK(per_group);  // only the per-group graph may refuse (unaligned channel slices)
                        continue;
                    }
                    bool from_cache = false;
                    if (!graph.choose_plan(handle.h, buf, cache, key + (per_group ? "/graph per group" : "/graph"),
                                           &from_cache)) {
                        (per_group ? group_unplanned : graph_unplanned)++;  // the node keeps another way
                        continue;
                    }
                    check(cudaDeviceSynchronize(), "plan search");
                    check(cudaMemset(dy.data(), kPoison, ref.size() * es), "poison");
                    graph.launch(handle.h, buf, 0);
                    check(cudaDeviceSynchronize(), "graph conv");
                    REQUIRE(dy.download(got, &why));
                    double gerr = max_rel_error(nhwc_to_nchw(got, n, cout, ohw), ref);
                    INFO((per_group ? "per-group " : "") << "graph plan rank " << graph.algorithm() << " ("
                                                         << graph.runs() << " runs), rel err " << gerr);
                    CHECK(gerr <= op_tolerance(p));
                    (per_group ? group_planned : graph_planned)++;

                    // A second start: the cached engine (global index and knobs) is rebuilt with no heuristic
                    // query, and runs the same plan: the same bits.
                    resnest::GraphConvLaunch again;
                    REQUIRE(again.describe(prob, handle.h, "test graph conv (cached)", &why, per_group));
                    bool again_cached = false;
                    REQUIRE(again.choose_plan(handle.h, buf, cache, key + (per_group ? "/graph per group" : "/graph"),
                                              &again_cached));
                    CHECK(again_cached);
                    CHECK(again.restored());
                    CHECK(again.heuristics_seconds() == 0.0);
                    CHECK(again.algorithm() == graph.algorithm());
                    CHECK(again.workspace_needed() == graph.workspace_needed());
                    restored += again.restored();
                    check(cudaMemset(dy.data(), kPoison, ref.size() * es), "poison");
                    again.launch(handle.h, buf, 0);
                    check(cudaDeviceSynchronize(), "restored graph conv");
                    std::vector<float> got_again;
                    REQUIRE(dy.download(got_again, &why));
                    CHECK(got_again == got);
                }
            }
    }
    std::printf("cuda conv: %d cases also ran on a cuDNN graph plan, %d had no precompiled deterministic engine; "
                "grouped cases per group: %d ran, %d had no engine; %d plans rebuilt from the cached engine\n",
                graph_planned, graph_unplanned, group_planned, group_unplanned, restored);
    CHECK(graph_planned > 0);
    cudaFree(workspace);
}

TEST_CASE("grouped convolution is bit-exact on small integers with implicit GEMM pinned", "[cuda][ops][conv]") {
    INFO("seed " << run_seed());
    CudnnHandle handle;
    void* workspace = nullptr;
    const size_t ws_bytes = 64ull << 20;
    check(cudaMalloc(&workspace, ws_bytes), "workspace");
    for (auto [cin, cout, g, h, w] : std::vector<std::tuple<int, int, int, int, int>>{
             {16, 32, 2, 9, 11}, {64, 128, 2, 14, 14}, {24, 48, 4, 7, 5}, {8, 8, 8, 6, 6}}) {
        resnest::Conv2dAttrs a;
        a.in_channels = cin, a.out_channels = cout, a.kernel_h = a.kernel_w = 3, a.pad_h = a.pad_w = 1, a.groups = g;
        const int n = 2, cpg = cin / g, hw = h * w;
        std::vector<float> x = random_small_ints((size_t)n * cin * hw, 3, cin + h);
        std::vector<float> wt = random_small_ints((size_t)cout * cpg * 9, 2, cout + w);
        std::vector<float> ref((size_t)n * cout * hw);
        for (int b = 0; b < n; b++)
            resnest::conv2d_direct_double(a, x.data() + (size_t)b * cin * hw, h, w, wt.data(), nullptr,
                                          ref.data() + (size_t)b * cout * hw, h, w);
        GuardedBuffer dx(x.size(), 4), dw(wt.size(), 4), dy(ref.size(), 4);
        dx.upload(nchw_to_nhwc(x, n, cin, hw));
        dw.upload(resnest::conv_weight_oihw_to_ohwi(wt, cout, cpg, 3, 3));
        resnest::ConvProblem prob;
        prob.attrs = a, prob.batch = n, prob.in_h = h, prob.in_w = w, prob.out_h = h, prob.out_w = w;
        prob.precision = Precision::fp32;
        resnest::ConvLaunch conv;
        conv.describe(prob, "exact conv");
        resnest::ConvBuffers buf{dx.data(), dw.data(), nullptr, nullptr, nullptr, dy.data(), workspace, ws_bytes};
        conv.pin_algorithm(handle.h, buf, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM);
        conv.launch(handle.h, buf, 0);
        check(cudaDeviceSynchronize(), "conv");
        std::vector<float> got;
        std::string why;
        INFO("exact grouped conv " << cin << "->" << cout << " g" << g << " " << h << "x" << w);
        REQUIRE(dy.download(got, &why));
        CHECK(nhwc_to_nchw(got, n, cout, hw) == ref);
    }
    cudaFree(workspace);
}

TEST_CASE("the choices time short library calls (cuDNN graph plans, legacy cuDNN, cuBLASLt) as CUDA graph replays "
          "on a stream that can be captured, and count the timings that could not be",
          "[cuda][ops][conv][timing]") {
    // A short convolution (fp16, batch 1, 1x1 256 -> 64 at 14x14: microseconds) timed by each way's choice on a
    // non-blocking stream, as a context's is: every short timing is a graph replay (choice_timing_tally). On
    // the legacy default stream, which cannot be captured, the same timings count as not captured, so the
    // count can tell the two apart.
    INFO("seed " << run_seed());
    const char* asked = std::getenv("RESNEST_CHOICE_TIMING");
    if (asked && std::string(asked) == "launches") {
        SUCCEED("RESNEST_CHOICE_TIMING=launches is set: every choice is timed back to back; not checked");
        return;
    }
    CudnnHandle handle;
    cublasLtHandle_t lt = nullptr;
    REQUIRE(cublasLtCreate(&lt) == CUBLAS_STATUS_SUCCESS);
    cudaStream_t stream = nullptr;
    check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "stream");
    void* workspace = nullptr;
    const size_t ws_bytes = 64ull << 20;
    check(cudaMalloc(&workspace, ws_bytes), "workspace");
    resnest::Conv2dAttrs a;
    a.in_channels = 256, a.out_channels = 64, a.kernel_h = a.kernel_w = 1, a.bias = true;
    const int n = 1, h = 14, w = 14;
    GuardedBuffer dx((size_t)n * 256 * h * w, 2), dw(64 * 256, 2), db(64, 2), dbf(64, 4), dy((size_t)n * 64 * h * w, 2);
    dx.upload(random_floats(dx.count(), -1, 1, 71));
    dw.upload(random_floats(dw.count(), -0.06f, 0.06f, 72));
    const std::vector<float> bias = random_floats(64, -0.5f, 0.5f, 73);
    db.upload(bias), dbf.upload(bias);
    resnest::ConvProblem prob;
    prob.attrs = a, prob.batch = n, prob.in_h = prob.out_h = h, prob.in_w = prob.out_w = w;
    prob.precision = Precision::fp16;
    resnest::ConvBuffers buf{dx.data(), dw.data(), db.data(), (const float*)dbf.data(), nullptr, dy.data(),
                             workspace, ws_bytes};
    resnest::ConvAlgoCache cache("");  // in memory; each stream's keys its own, so every choice is timed
    for (cudaStream_t s : {stream, (cudaStream_t) nullptr}) {
        const bool capturable = s != nullptr;
        const std::string on = capturable ? "non-blocking stream" : "legacy default stream";
        INFO("on the " << on);
        REQUIRE(cudnnSetStream(handle.h, s) == CUDNN_STATUS_SUCCESS);
        int ways = 0, told = 0;
        auto expect = [&](const resnest::ChoiceTimingTally& before, const char* way) {
            const resnest::ChoiceTimingTally t = resnest::choice_timing_tally().since(before);
            ways++;
            std::printf("cuda choice timing, %s on the %s: %ld as graph replays, %ld long calls, %ld not captured\n",
                        way, on.c_str(), t.replayed, t.long_calls, t.not_captured);
            INFO(way << ": " << t.replayed << " replayed, " << t.long_calls << " long, " << t.not_captured
                     << " not captured");
            CHECK(t.launches_asked == 0);
            if (t.replayed + t.not_captured == 0) {  // every call 0.05 ms or more on its own: nothing to tell
                CHECK(t.long_calls >= 1);
                return;
            }
            if (capturable) {
                CHECK(t.replayed >= 1);
                CHECK(t.not_captured == 0);
            } else {
                CHECK(t.replayed == 0);
                CHECK(t.not_captured >= 1);
            }
            told++;
        };
        std::string why;
        bool from_cache = false;

        resnest::ChoiceTimingTally before = resnest::choice_timing_tally();
        resnest::GraphConvLaunch graph;
        REQUIRE(graph.describe(prob, handle.h, "timed graph conv", &why));
        if (graph.choose_plan(handle.h, buf, cache, on + " graph", &from_cache)) expect(before, "cuDNN graph plans");

        before = resnest::choice_timing_tally();
        resnest::ConvLaunch legacy;
        legacy.describe(prob, "timed legacy conv");
        legacy.set_timed_search(true);
        legacy.choose_algorithm(handle.h, buf, cache, on + " legacy");
        expect(before, "legacy cuDNN (timed search)");

        before = resnest::choice_timing_tally();
        resnest::GemmConvLaunch gemm;
        REQUIRE(gemm.describe(prob, buf, "timed gemm conv", &why));
        REQUIRE(gemm.choose_algorithm(lt, buf, s, cache, on + " gemm", &from_cache));
        CHECK_FALSE(from_cache);
        expect(before, "cuBLASLt");
        CHECK(ways >= 2);
        CHECK(told >= 1);  // at least one way had a short call to time, so the stream's kind was checked
        check(cudaStreamSynchronize(s ? s : cudaStreamLegacy), "the choices' work");
    }
    cublasLtDestroy(lt);
    cudaFree(workspace);
    cudaStreamDestroy(stream);
}
