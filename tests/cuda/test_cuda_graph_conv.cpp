// test_cuda_graph_conv.cpp: convolutions through cuDNN's operation graph (runtime/cuda/cuda_graph_conv.cpp)
// against the CPU oracle at every convolution shape of the committed models plus ragged ones, with bias,
// with bias + ReLU, and with bias + residual + ReLU, in fp32, tf32 and fp16, on poisoned outputs with guard
// regions; and whole models with every convolution on the graph where an engine runs it (--conv-graph on).
#include <catch2/catch.hpp>

#include <cudnn.h>

#include <set>
#include <thread>

#include "cpu/cpu_ops.h"
#include "cuda/cuda_graph_conv.h"
#include "cuda_test_helpers.h"
#include "graph.h"
#include "weight_layout.h"

using namespace cuda_test;
using resnest::Precision;

namespace {

struct GraphCase {
    resnest::Conv2dAttrs a;
    int h, w, oh, ow;
};

std::vector<GraphCase> graph_cases() {
    std::vector<GraphCase> cases;
    std::set<std::string> seen;
    for (const char* m : {"models/resnest50.json", "models/resnest50_fast_1s1x64d.json", "models/resnest50d_torch.json",
                          "models/resnest50_fast_1s1x64d_torch.json"}) {
        resnest::Graph g = resnest::graph_load(source_dir() + "/" + m);
        for (const resnest::Node& n : g.nodes) {
            if (n.op != resnest::OpType::conv2d) continue;
            const auto& x = g.tensors[n.inputs[0]].shape;
            const auto& y = g.tensors[n.output].shape;
            const auto& a = n.conv;
            std::string key = resnest::shape_str(x) + resnest::shape_str(y) + std::to_string(a.kernel_h) +
                              std::to_string(a.stride_h) + std::to_string(a.pad_h) + std::to_string(a.groups);
            if (seen.insert(key).second) cases.push_back({a, (int)x[1], (int)x[2], (int)y[1], (int)y[2]});
        }
    }
    resnest::Conv2dAttrs r;
    r.in_channels = 12, r.out_channels = 24, r.kernel_h = r.kernel_w = 3, r.pad_h = r.pad_w = 1, r.groups = 4;
    cases.push_back({r, 5, 11, 5, 11});
    r.in_channels = 8, r.out_channels = 16, r.stride_h = r.stride_w = 2, r.groups = 2;
    cases.push_back({r, 9, 7, 5, 4});
    return cases;
}

struct Handle {
    cudnnHandle_t h = nullptr;
    Handle() { REQUIRE(cudnnCreate(&h) == CUDNN_STATUS_SUCCESS); }
    ~Handle() { cudnnDestroy(h); }
};

}  // namespace

TEST_CASE("convolutions through cuDNN's fused operation graph match the CPU at every model shape",
          "[cuda][ops][cudnn-graph]") {
    INFO("seed " << run_seed());
    Handle handle;
    void* workspace = nullptr;
    const size_t ws_bytes = 128ull << 20;
    check(cudaMalloc(&workspace, ws_bytes), "workspace");
    resnest::ConvAlgoCache cache("");
    const int threads = (int)std::max(1u, std::thread::hardware_concurrency());
    int planned = 0, unplanned = 0;
    for (const GraphCase& c : graph_cases()) {
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
            for (int variant = 0; variant < 3; variant++) {  // bias; bias + ReLU; bias + residual + ReLU
                const bool relu = variant >= 1, residual = variant == 2;
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
                GuardedBuffer dx(x.size(), es), dw(w.size(), es), db(cout, es), dz(z.size(), es), dy(ref.size(), es);
                dx.upload(nchw_to_nhwc(x, n, cin, hw));
                dw.upload(resnest::conv_weight_oihw_to_ohwi(w, cout, cpg, a.kernel_h, a.kernel_w));
                db.upload(bias), dz.upload(nchw_to_nhwc(z, n, cout, ohw));
                resnest::ConvProblem prob;
                prob.attrs = a, prob.batch = n, prob.in_h = c.h, prob.in_w = c.w, prob.out_h = c.oh, prob.out_w = c.ow;
                prob.relu = relu, prob.has_z = residual, prob.precision = p;
                resnest::ConvBuffers buf{dx.data(), dw.data(), db.data(), nullptr, residual ? dz.data() : nullptr,
                                         dy.data(), workspace, ws_bytes};
                INFO(resnest::precision_name(p) << " variant " << variant << " conv " << cin << "->" << cout << " k"
                                                << a.kernel_h << " s" << a.stride_h << " g" << a.groups << " " << c.h
                                                << "x" << c.w);
                resnest::GraphConvLaunch conv;
                std::string why;
                REQUIRE(conv.describe(prob, handle.h, "test graph conv", &why));
                bool from_cache = false;
                if (!conv.choose_plan(handle.h, buf, cache, "graph " + std::to_string(salt) + resnest::precision_name(p) +
                                                                std::to_string(variant), &from_cache)) {
                    unplanned++;  // no precompiled deterministic engine: the node keeps another way
                    continue;
                }
                check(cudaDeviceSynchronize(), "plan search");
                check(cudaMemset(dy.data(), kPoison, ref.size() * es), "poison");
                conv.launch(handle.h, buf, 0);
                check(cudaDeviceSynchronize(), "graph conv");
                std::vector<float> got;
                REQUIRE(dy.download(got, &why));
                double err = max_rel_error(nhwc_to_nchw(got, n, cout, ohw), ref);
                INFO("heuristic rank " << conv.algorithm() << ", rel err " << err);
                CHECK(err <= op_tolerance(p));
                planned++;
            }
    }
    std::printf("cuda graph conv: %d cases ran on a cuDNN graph plan, %d had no precompiled deterministic engine\n",
                planned, unplanned);
    CHECK(planned > 0);
    cudaFree(workspace);
}
