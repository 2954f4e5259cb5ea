// test_passes.cpp: the graph passes (BN folding, conv + bias + residual + ReLU fusion, the avd pool fused into
// split attention) checked on the CPU: what they rewrite in the committed models, that the rewritten graph
// computes the same function (CPU engine, passes on vs off, tiny fixtures against framework logits and a
// full model), and the host pieces of the CUDA backend (filter layouts, the algorithm cache, roofline).
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "bench_stats.h"
#include "conv_algo_cache.h"
#include "conv_as_gemm.h"
#include "cudnn_engine_choice.h"
#include "cpu/cpu_ops.h"
#include "graph.h"
#include "npy.h"
#include "passes.h"
#include "planner.h"
#include "resnest/engine.h"
#include "safetensors.h"
#include "test_helpers.h"
#include "weight_blob.h"
#include "weight_layout.h"
#include "weights.h"

using namespace resnest;
using Catch::Contains;

namespace {

int count_op(const Graph& g, OpType op) {
    int n = 0;
    for (const Node& node : g.nodes) n += node.op == op;
    return n;
}

double max_rel(const std::vector<float>& a, const std::vector<float>& b) {
    REQUIRE(a.size() == b.size());
    return test::max_rel_error(a.data(), b.data(), a.size());
}

}  // namespace

TEST_CASE("passes fold every BN and fuse every residual add and ReLU of ResNeSt50", "[passes]") {
    Graph g = graph_load(test::source_path("models/resnest50.json"));
    HostWeights w;  // random values with positive variances: only the bookkeeping matters here
    for (const WeightRequirement& r : g.weights) {
        std::vector<float> v = test::random_floats((size_t)shape_numel(r.shape), 0.5f, 1.5f);
        w.tensors[r.tensor] = v;
    }
    const int bn = count_op(g, OpType::batch_norm), add = count_op(g, OpType::add), relu = count_op(g, OpType::relu);
    const int attn = count_op(g, OpType::split_attention), avg = count_op(g, OpType::avg_pool2d);
    const size_t nodes = g.nodes.size();
    PassLog log;
    int folded = fold_batch_norm(g, w, &log);
    CHECK(folded == bn + attn);  // every BN follows a conv; every split attention's inner BN folds into fc1
    CHECK(count_op(g, OpType::batch_norm) == 0);
    int residual = fuse_conv_residual_add(g, &log);
    CHECK(residual == add);
    CHECK(count_op(g, OpType::add) == 0);
    int relus = fuse_conv_relu(g, &log);
    CHECK(relus == relu);  // every ReLU follows a conv once the adds are in the convs
    int pools = fuse_split_attention_avg_pool(g, &log);
    CHECK(pools == 3);  // ResNeSt50's avd pool follows the attention in the first block of layers 2, 3 and 4
    CHECK(count_op(g, OpType::avg_pool2d) == avg - pools);
    CHECK(g.nodes.size() == nodes - bn - add - relu - pools);
    CHECK((int)log.size() == folded + residual + relus + pools);
    CHECK_THAT(log.front(), Contains("fold_batch_norm: conv1.1 into conv1.0"));
    // The graph still links up: producers, consumers, a valid plan in which every tensor has a place.
    for (size_t i = 0; i < g.nodes.size(); i++) {
        CHECK(g.tensors[g.nodes[i].output].producer == (int)i);
        for (int t : g.nodes[i].inputs) {
            const auto& c = g.tensors[t].consumers;
            CHECK(std::find(c.begin(), c.end(), (int)i) != c.end());
            CHECK((t == g.input || g.tensors[t].producer < (int)i));
        }
    }
    MemoryPlan plan = plan_memory(g, 4, 2);
    CHECK(plan.arena_bytes > 0);
    for (const Node& n : g.nodes) CHECK(plan.offset[n.output] >= 0);
}

TEST_CASE("drop_unread_weights keeps exactly the tensors the passed graph reads", "[passes]") {
    Graph g = graph_load(test::source_path("models/resnest50.json"));
    HostWeights w;
    for (const WeightRequirement& r : g.weights)
        w.tensors[r.tensor] = test::random_floats((size_t)shape_numel(r.shape), 0.5f, 1.5f);
    std::vector<std::string> bn_tensors;  // every batch_norm's four tensors, read by nothing once folded
    for (const Node& n : g.nodes)
        if (n.op == OpType::batch_norm)
            for (const auto& role : n.weights) bn_tensors.push_back(role.second);
    const size_t before = w.tensors.size();
    std::vector<std::string> original;
    for (const auto& t : w.tensors) original.push_back(t.first);
    run_graph_passes(g, w, nullptr);
    REQUIRE(w.tensors.size() > before);  // the folds add their tensors beside the originals
    const std::vector<float> fc = w.tensors.at(g.nodes.back().weights.at("weight"));
    const int erased = drop_unread_weights(g, w);
    CHECK(erased > 0);
    std::set<std::string> read;
    for (const WeightRequirement& r : g.weights) read.insert(r.tensor);
    int originals_unread = 0;
    for (const std::string& t : original) originals_unread += read.count(t) == 0;
    CHECK(erased == originals_unread);  // every tensor the folds wrote is read
    CHECK(w.tensors.size() == read.size());
    for (const std::string& t : read) CHECK(w.tensors.count(t) == 1);
    for (const std::string& t : bn_tensors) CHECK(w.tensors.count(t) == 0);
    CHECK(w.tensors.at(g.nodes.back().weights.at("weight")) == fc);  // kept tensors are untouched
    CHECK(drop_unread_weights(g, w) == 0);
}

TEST_CASE("pad_input_channels widens the input and the stem filter with zeros, and the sums do not change",
          "[passes][cuda-host]") {
    Graph g = graph_load(test::source_path("models/resnest50.json"));
    HostWeights w;
    for (const WeightRequirement& r : g.weights)
        w.tensors[r.tensor] = test::random_floats((size_t)shape_numel(r.shape), 0.5f, 1.5f);
    PassLog log;
    run_graph_passes(g, w, &log);
    const size_t rewrites = log.size();
    CHECK(pad_input_channels(g, w, 1, &log) == 3);  // already a multiple of 1: nothing to do
    CHECK(pad_input_channels(g, w, 8, &log) == 8);
    CHECK(pad_input_channels(g, w, 8, &log) == 8);  // a second call finds it done
    REQUIRE(log.size() == rewrites + 1);
    CHECK_THAT(log.back(), Contains("pad_input_channels: conv1.0 reads the input widened from 3 to 8 channels"));
    CHECK(g.input_shape == Shape{3, 224, 224});  // what the caller passes in
    CHECK(g.tensors[g.input].shape == Shape{8, 224, 224});
    const Node& stem = g.nodes[g.tensors[g.input].consumers.at(0)];
    CHECK(stem.name == "conv1.0");
    CHECK(stem.conv.in_channels == 8);
    auto req = std::find_if(g.weights.begin(), g.weights.end(),
                            [&](const WeightRequirement& r) { return r.tensor == stem.weights.at("weight"); });
    REQUIRE(req != g.weights.end());
    CHECK(req->shape == Shape{32, 8, 3, 3});
    REQUIRE(w.tensors.at(stem.weights.at("weight")).size() == 32 * 8 * 9);

    // The padded convolution of the zero-padded input equals the convolution of the input (in double, the
    // zero products add nothing).
    Conv2dAttrs a;
    a.in_channels = 3, a.out_channels = 5, a.kernel_h = a.kernel_w = 3, a.stride_h = a.stride_w = 2;
    a.pad_h = a.pad_w = 1;
    Conv2dAttrs ap = a;
    ap.in_channels = 8;
    const int H = 9, W = 7, OH = 5, OW = 4;
    std::vector<float> x = test::random_floats(3 * H * W), wt = test::random_floats(5 * 3 * 9);
    std::vector<float> xp(8 * H * W, 0.0f);
    std::copy(x.begin(), x.end(), xp.begin());  // channels 0..2 of (C, H, W); 3..7 stay zero
    std::vector<float> wp = conv_weight_pad_in_channels(wt, 5, 3, 8, 3, 3);
    std::vector<float> y(5 * OH * OW), yp(5 * OH * OW);
    conv2d_direct_double(a, x.data(), H, W, wt.data(), nullptr, y.data(), OH, OW);
    conv2d_direct_double(ap, xp.data(), H, W, wp.data(), nullptr, yp.data(), OH, OW);
    CHECK(y == yp);
    int nonzero_pad = 0;
    for (int o = 0; o < 5; o++)
        for (int i = 3; i < 8; i++)
            for (int k = 0; k < 9; k++) nonzero_pad += wp[(o * 8 + i) * 9 + k] != 0.0f;
    CHECK(nonzero_pad == 0);

    // An input that is not only the first input of ungrouped convolutions stays as it is.
    const std::string text = R"({"format": "resnest-graph", "version": 1,
      "input": {"name": "x", "shape": [-1, 3, 4, 4], "layout": "NCHW", "dtype": "float32"},
      "outputs": ["r"],
      "nodes": [
        {"name": "c", "op": "conv2d", "inputs": ["x"], "outputs": ["c"], "attrs": {"in_channels": 3, "out_channels": 3, "kernel": 1}, "weights": {"weight": "c.w"}},
        {"name": "s", "op": "add", "inputs": ["c", "x"], "outputs": ["s"]},
        {"name": "r", "op": "relu", "inputs": ["s"], "outputs": ["r"]}]})";
    Graph g2 = graph_parse(text, "<test>");
    HostWeights w2;
    for (const WeightRequirement& r : g2.weights) w2.tensors[r.tensor] = test::random_floats(shape_numel(r.shape));
    CHECK(pad_input_channels(g2, w2, 8, nullptr) == 3);
    CHECK(g2.tensors[g2.input].shape[0] == 3);
    CHECK(g2.nodes[0].conv.in_channels == 3);
}

TEST_CASE("a conv whose output has a second reader is not fused", "[passes]") {
    const std::string text = R"({"format": "resnest-graph", "version": 1,
      "input": {"name": "x", "shape": [-1, 2, 4, 4], "layout": "NCHW", "dtype": "float32"},
      "outputs": ["r", "c"],
      "nodes": [
        {"name": "c", "op": "conv2d", "inputs": ["x"], "outputs": ["c"], "attrs": {"in_channels": 2, "out_channels": 2, "kernel": 1}, "weights": {"weight": "c.w"}},
        {"name": "b", "op": "batch_norm", "inputs": ["c"], "outputs": ["b"], "attrs": {"channels": 2},
         "weights": {"weight": "b.g", "bias": "b.b", "running_mean": "b.m", "running_var": "b.v"}},
        {"name": "r", "op": "relu", "inputs": ["b"], "outputs": ["r"]}]})";
    Graph g = graph_parse(text, "<test>");
    HostWeights w;
    for (const WeightRequirement& r : g.weights) w.tensors[r.tensor] = test::random_floats(shape_numel(r.shape), 0.5f, 1.5f);
    PassLog log;
    CHECK(fold_batch_norm(g, w, &log) == 0);  // "c" is a graph output: the BN stays
    CHECK(fuse_conv_relu(g, &log) == 0);      // the ReLU reads a BN, not a conv
    CHECK(g.nodes.size() == 3);
}

TEST_CASE("a non-positive variance is refused by the fold, naming the tensor", "[passes]") {
    Graph g = graph_load(test::source_path("tests/fixtures/tiny/tiny_r2_k1_torch.json"));
    auto file = SafetensorsFile::open(test::source_path("tests/fixtures/tiny/tiny_r2_k1_torch.safetensors"));
    HostWeights w = bind_weights(g, *file);
    w.tensors.at("bn1.running_var")[0] = -1.0f;
    CHECK_THROWS_WITH(fold_batch_norm(g, w, nullptr), Contains("bn1.running_var") && Contains("not positive"));
}

TEST_CASE("a refused fold leaves the graph, the weights and the log as they were", "[passes]") {
    Graph g = graph_load(test::source_path("models/resnest50.json"));
    HostWeights w;
    for (const WeightRequirement& r : g.weights)
        w.tensors[r.tensor] = test::random_floats((size_t)shape_numel(r.shape), 0.5f, 1.5f);
    // Corrupt the last BN's variance, so that every fold before it would have been made.
    std::string last_var;
    for (const Node& n : g.nodes)
        if (n.op == OpType::batch_norm) last_var = n.weights.at("running_var");
    REQUIRE(!last_var.empty());
    w.tensors.at(last_var).back() = -2.0f;
    const Graph before = g;
    const HostWeights weights_before = w;
    PassLog log{"an earlier line"};
    CHECK_THROWS_WITH(fold_batch_norm(g, w, &log), Contains(last_var) && Contains("not positive"));
    CHECK(log == PassLog{"an earlier line"});
    REQUIRE(g.nodes.size() == before.nodes.size());
    REQUIRE(g.tensors.size() == before.tensors.size());
    for (size_t i = 0; i < g.nodes.size(); i++) {
        INFO(g.nodes[i].name);
        CHECK(g.nodes[i].output == before.nodes[i].output);
        CHECK(g.nodes[i].inputs == before.nodes[i].inputs);
        CHECK(g.nodes[i].weights == before.nodes[i].weights);
        CHECK(g.nodes[i].conv.bias == before.nodes[i].conv.bias);
        CHECK(g.nodes[i].attn.bn_folded == before.nodes[i].attn.bn_folded);
    }
    CHECK(g.weights.size() == before.weights.size());
    CHECK(w.tensors == weights_before.tensors);
    // The same graph with the variance mended folds every BN.
    w.tensors.at(last_var).back() = 1.0f;
    CHECK(fold_batch_norm(g, w, &log) > 0);
    CHECK(log.size() > 1);
}

TEST_CASE("the CPU engine computes the same function with the passes on (tiny fixtures and ResNeSt50)", "[passes]") {
    std::ifstream f(test::source_path("tests/fixtures/fixtures.json"));
    nlohmann::json manifest = nlohmann::json::parse(f);
    int checked = 0;
    for (const auto& fx : manifest["fixtures"]) {
        if (fx["kind"] != "tiny") continue;
        NpyArray x = npy_read(test::source_path(fx["input"]));
        NpyArray expected = npy_read(test::source_path(fx["expected"]));
        int n = (int)x.shape[0];
        EngineOptions o;
        o.max_batch = n;
        o.passes = 1;
        auto e = Engine::load(test::source_path(fx["graph"]), test::source_path(fx["weights"]), o);
        CHECK(!e->pass_log().empty());
        std::vector<float> y(expected.data.size(), NAN);
        e->create_context()->run(x.data.data(), n, y.data());
        INFO(fx["name"].get<std::string>());
        CHECK(max_rel(y, expected.data) <= 1e-5);  // the framework logits themselves, as without passes
        checked++;
    }
    CHECK(checked == 6);

    EngineOptions off, on;
    off.max_batch = on.max_batch = 2;
    on.passes = 1;
    auto a = Engine::load_seeded(test::source_path("models/resnest50.json"), 5, off);
    auto b = Engine::load_seeded(test::source_path("models/resnest50.json"), 5, on);
    CHECK(a->pass_log().empty());
    std::vector<float> x = test::random_floats(2 * 3 * 224 * 224, -2, 2);
    std::vector<float> ya(2000, NAN), yb(2000, NAN);
    a->create_context()->run(x.data(), 2, ya.data());
    b->create_context()->run(x.data(), 2, yb.data());
    CHECK(max_rel(yb, ya) <= 1e-5);
}

TEST_CASE("NHWC filters and the dense form of a grouped filter", "[passes][cuda-host]") {
    // OHWI: element (o, ky, kx, i) is OIHW's (o, i, ky, kx).
    const int O = 6, I = 4, KH = 3, KW = 2;
    std::vector<float> w = test::random_floats(O * I * KH * KW);
    std::vector<float> t = conv_weight_oihw_to_ohwi(w, O, I, KH, KW);
    for (int o = 0; o < O; o++)
        for (int i = 0; i < I; i++)
            for (int ky = 0; ky < KH; ky++)
                for (int kx = 0; kx < KW; kx++)
                    REQUIRE(t[((o * KH + ky) * KW + kx) * I + i] == w[((o * I + i) * KH + ky) * KW + kx]);
    // A dense convolution with the block-diagonal filter equals the grouped convolution.
    for (int groups : {2, 4}) {
        Conv2dAttrs g;
        g.in_channels = 8, g.out_channels = 12, g.kernel_h = g.kernel_w = 3, g.pad_h = g.pad_w = 1, g.groups = groups;
        Conv2dAttrs d = g;
        d.groups = 1;
        std::vector<float> x = test::random_floats(8 * 5 * 7);
        std::vector<float> wg = test::random_floats(12 * (8 / groups) * 9);
        std::vector<float> wd = conv_weight_grouped_to_dense(wg, 12, 8, groups, 3, 3);
        std::vector<float> yg(12 * 35), yd(12 * 35);
        conv2d_direct_double(g, x.data(), 5, 7, wg.data(), nullptr, yg.data(), 5, 7);
        conv2d_direct_double(d, x.data(), 5, 7, wd.data(), nullptr, yd.data(), 5, 7);
        CHECK(yg == yd);
    }
    std::vector<uint16_t> h = floats_to_halves({1.0f, -2.0f, 65504.0f, 1e-8f});
    CHECK(h == std::vector<uint16_t>{0x3C00, 0xC000, 0x7BFF, 0x0000});
}

TEST_CASE("the device weight buffer holds every node's pieces, converted, aligned, apart, gaps zero",
          "[passes][cuda-host]") {
    for (const char* model : {"tests/fixtures/tiny/tiny_r4_k2_torch.json", "models/resnest50.json"}) {
        Graph g = graph_load(test::source_path(model));
        HostWeights w;
        for (const WeightRequirement& r : g.weights)
            w.tensors[r.tensor] = test::random_floats((size_t)shape_numel(r.shape), 0.5f, 1.5f);
        run_graph_passes(g, w, nullptr);
        for (Precision p : {Precision::fp32, Precision::fp16}) {
            INFO(model << " " << precision_name(p));
            WeightBlob blob = build_weight_blob(g, w, p);
            REQUIRE(blob.nodes.size() == g.nodes.size());
            const unsigned char* base = blob.data.get();
            std::vector<std::pair<int64_t, int64_t>> pieces;  // (offset, bytes)
            int mismatched = 0;
            // The piece at `off` must hold `want` in the storage type (half bits in fp16) or as float.
            auto expect = [&](int64_t off, const std::vector<float>& want, bool storage) {
                REQUIRE(off >= 0);
                const bool half = storage && p == Precision::fp16;
                const int64_t bytes = (int64_t)want.size() * (half ? 2 : 4);
                REQUIRE(off + bytes <= blob.size);
                pieces.push_back({off, bytes});
                if (half) {
                    std::vector<uint16_t> h = floats_to_halves(want);
                    mismatched += std::memcmp(base + off, h.data(), (size_t)bytes) != 0;
                } else {
                    mismatched += std::memcmp(base + off, want.data(), (size_t)bytes) != 0;
                }
            };
            int convs = 0, dense = 0, attns = 0;
            for (size_t i = 0; i < g.nodes.size(); i++) {
                const Node& n = g.nodes[i];
                const NodeWeightOffsets& o = blob.nodes[i];
                if (n.op == OpType::conv2d) {
                    const Conv2dAttrs& a = n.conv;
                    const std::vector<float>& f = w.tensors.at(n.weights.at("weight"));
                    expect(o.conv_w, conv_weight_oihw_to_ohwi(f, a.out_channels, a.in_channels / a.groups, a.kernel_h,
                                                              a.kernel_w), true);
                    if (a.groups > 1) {
                        expect(o.conv_w_dense,
                               conv_weight_oihw_to_ohwi(conv_weight_grouped_to_dense(f, a.out_channels, a.in_channels,
                                                                                     a.groups, a.kernel_h, a.kernel_w),
                                                        a.out_channels, a.in_channels, a.kernel_h, a.kernel_w),
                               true);
                        dense++;
                    } else {
                        CHECK(o.conv_w_dense == -1);
                    }
                    REQUIRE(a.bias);  // every conv has one after BN folding
                    expect(o.conv_b_f, w.tensors.at(n.weights.at("bias")), false);
                    expect(o.conv_b, w.tensors.at(n.weights.at("bias")), true);
                    convs++;
                } else if (n.op == OpType::split_attention) {
                    std::vector<float> w1, b1;
                    split_attention_folded_fc1(g, n, w, w1, b1);
                    expect(o.fc1_w, w1, false);
                    expect(o.fc1_b, b1, false);
                    expect(o.fc2_w, w.tensors.at(n.weights.at("fc2_weight")), false);
                    expect(o.fc2_b, w.tensors.at(n.weights.at("fc2_bias")), false);
                    attns++;
                } else if (n.op == OpType::linear) {
                    expect(o.linear_w, w.tensors.at(n.weights.at("weight")), true);
                    expect(o.linear_b, w.tensors.at(n.weights.at("bias")), false);
                } else {
                    CHECK(o.conv_w == -1);
                    CHECK(o.fc1_w == -1);
                    CHECK(o.linear_w == -1);
                }
            }
            CHECK(mismatched == 0);
            CHECK(convs > 0);
            CHECK(dense > 0);
            CHECK(attns > 0);
            // 256-byte aligned, apart, covering the buffer with zeros between them.
            std::sort(pieces.begin(), pieces.end());
            int64_t end = 0, nonzero_gap = 0;
            for (const auto& [off, bytes] : pieces) {
                CHECK(off % 256 == 0);
                CHECK(off >= end);
                for (int64_t b = end; b < off; b++) nonzero_gap += base[b] != 0;
                end = off + bytes;
            }
            CHECK(end == blob.size);
            CHECK(nonzero_gap == 0);
        }
    }
}

TEST_CASE("the device weight buffer reports the first corrupt batch norm in graph order", "[passes][cuda-host]") {
    // With the passes off the buffer folds each BN's statistics itself, a node a thread.
    Graph g = graph_load(test::source_path("tests/fixtures/tiny/tiny_r4_k2_torch.json"));
    HostWeights w;
    std::vector<std::string> variances;  // batch_norm running_var tensors, in graph order
    for (const WeightRequirement& r : g.weights) {
        w.tensors[r.tensor] = test::random_floats((size_t)shape_numel(r.shape), 0.5f, 1.5f);
        if (g.nodes[r.node].op == OpType::batch_norm && r.role == "running_var") variances.push_back(r.tensor);
    }
    REQUIRE(variances.size() >= 3);
    w.tensors.at(variances[1])[0] = -2.0f;
    w.tensors.at(variances.back())[0] = -2.0f;
    for (int rep = 0; rep < 5; rep++)
        CHECK_THROWS_WITH(build_weight_blob(g, w, Precision::fp32),
                          Contains("'" + variances[1] + "'") && Contains("not positive"));
}

TEST_CASE("fp16 weights past half's range after BN folding are refused, naming the node", "[passes][cuda-host]") {
    // A BN with a large scale over a near-zero variance multiplies its convolution's filter by
    // gamma / sqrt(var + eps): finite in the file, past 65504 once folded (300 x 1/sqrt(1e-5) ~ 1e5). fp16
    // storage would hold infinities; fp32 keeps them.
    Graph g = graph_load(test::source_path("tests/fixtures/tiny/tiny_r4_k2_torch.json"));
    HostWeights w;
    std::string variance, gamma, conv;
    for (const WeightRequirement& r : g.weights) {
        w.tensors[r.tensor] = test::random_floats((size_t)shape_numel(r.shape), 0.5f, 1.5f);
        const Node& n = g.nodes[r.node];
        if (conv.empty() && n.op == OpType::batch_norm) conv = g.nodes[g.tensors[n.inputs[0]].producer].name;
        if (n.op == OpType::batch_norm && g.nodes[g.tensors[n.inputs[0]].producer].name == conv) {
            if (r.role == "running_var") variance = r.tensor;
            if (r.role == "weight") gamma = r.tensor;
        }
    }
    REQUIRE(!variance.empty());
    REQUIRE(!gamma.empty());
    w.tensors.at(variance)[0] = 1e-12f;
    w.tensors.at(gamma)[0] = 300.0f;
    run_graph_passes(g, w, nullptr);
    CHECK_NOTHROW(build_weight_blob(g, w, Precision::fp32));
    CHECK_THROWS_WITH(build_weight_blob(g, w, Precision::fp16),
                      Contains("tiny_r4_k2_torch.json: node '" + conv + "': ") && Contains("values of its filter") &&
                          Contains("past fp16's largest, 65504") && Contains("--precision tf32 or fp32"));
    // Within range: nothing refused.
    w.tensors.clear();
    g = graph_load(test::source_path("tests/fixtures/tiny/tiny_r4_k2_torch.json"));
    for (const WeightRequirement& r : g.weights)
        w.tensors[r.tensor] = test::random_floats((size_t)shape_numel(r.shape), 0.5f, 1.5f);
    run_graph_passes(g, w, nullptr);
    CHECK_NOTHROW(build_weight_blob(g, w, Precision::fp16));
}

TEST_CASE("the convolution algorithm cache: keys, file round trip, corrupt lines", "[passes][cuda-host]") {
    ConvAlgoKeyParts k;
    k.device = "NVIDIA H200\tx";
    k.cc_major = 9, k.cudnn_version = 91900, k.precision = "fp16", k.batch = 8, k.in_channels = 64, k.in_h = 56,
    k.in_w = 56, k.out_channels = 128, k.kernel_h = k.kernel_w = 3, k.stride_h = k.stride_w = 1, k.pad_h = k.pad_w = 1,
    k.dilation_h = k.dilation_w = 1, k.groups = 2, k.fused_bias_relu = true;
    std::string key = conv_algo_key(k);
    CHECK(key.find('\t') == std::string::npos);
    // Every field changes the key.
    ConvAlgoKeyParts k2 = k;
    k2.batch = 9;
    CHECK(conv_algo_key(k2) != key);
    k2 = k, k2.groups = 1;
    CHECK(conv_algo_key(k2) != key);
    k2 = k, k2.precision = "fp32";
    CHECK(conv_algo_key(k2) != key);
    k2 = k, k2.cudnn_version = 91400;
    CHECK(conv_algo_key(k2) != key);
    k2 = k, k2.fused_bias_relu = false;
    CHECK(conv_algo_key(k2) != key);
    k2 = k, k2.residual = true;
    CHECK(conv_algo_key(k2) != key);
    k2 = k, k2.timed_search = true;
    CHECK(conv_algo_key(k2) != key);
    k2 = k, k2.workspace_mib = 1024;  // a choice limited to another workspace is another choice
    CHECK(conv_algo_key(k2) != key);
    k2 = k, k2.workspace_mib = 0;
    CHECK(conv_algo_key(k2) != key);
    // Other ops' keys: the same device, library, precision and batch fields, then the op.
    const std::string gate = op_algo_key(k, "gate r2\tc64");
    CHECK(gate.find('\t') == std::string::npos);
    CHECK(key.rfind(op_algo_key(k, ""), 0) == 0);
    CHECK(gate.rfind(op_algo_key(k, ""), 0) == 0);
    CHECK(op_algo_key(k, "gate r2 c64") != op_algo_key(k, "gate r2 c128"));
    k2 = k, k2.batch = 9;
    CHECK(op_algo_key(k2, "gate") != op_algo_key(k, "gate"));
    k2 = k, k2.precision = "fp32";
    CHECK(op_algo_key(k2, "gate") != op_algo_key(k, "gate"));
    k2 = k, k2.device = "NVIDIA H100";
    CHECK(op_algo_key(k2, "gate") != op_algo_key(k, "gate"));

    test::TempDir dir;
    std::string path = (dir.path / "sub" / "algos.tsv").string();
    {
        ConvAlgoCache c(path);
        CHECK(c.loaded() == 0);
        ConvAlgoChoice none;
        CHECK_FALSE(c.lookup(key, &none));
        c.insert(key, {6, 1, 123456, ""});
        // A cuBLASLt entry: a packed split-K (over cuDNN's math types) and a serialized 64-byte descriptor.
        c.insert(key + "|lt", {2, pack_split_k(8, 2), 4096, std::string(128, 'a')});
        c.insert(key + "|rank", {kMaxCachedAlgo, 0, 0, ""});  // a cuDNN graph's heuristic rank may pass 64
        CHECK(c.last_warning().empty());
    }
    {
        std::ofstream f(path, std::ios::app);
        // Eight bad lines: no tab, two numbers, a negative algorithm, a fifth field that is not hex, an odd
        // number of hex digits, a sixth field, a math type of 1024, an algorithm past kMaxCachedAlgo.
        f << "garbage line\n" << key << "x\t1\t2\n" << "k\t-1\t0\t0\n" << "k2\t1\t2\t3\textra\n"
          << "k3\t1\t2\t3\tabc\n" << "k4\t1\t2\t3\tab\tcd\n" << "k5\t1\t1024\t3\n"
          << "k6\t" << kMaxCachedAlgo + 1 << "\t0\t0\n";
    }
    ConvAlgoCache c(path);
    CHECK(c.loaded() == 3);
    CHECK(c.skipped_lines() == 8);
    CHECK_THAT(c.last_warning(), Contains("skipped 8 malformed"));
    ConvAlgoChoice rank;
    REQUIRE(c.lookup(key + "|rank", &rank));
    CHECK(rank.algo == kMaxCachedAlgo);
    ConvAlgoChoice lt;
    REQUIRE(c.lookup(key + "|lt", &lt));
    CHECK(lt.algo == 2);
    CHECK(unpacked_split_k(lt.math_type) == 8);
    CHECK(unpacked_scheme(lt.math_type) == 2);
    CHECK(lt.workspace_bytes == 4096);
    CHECK(lt.opaque == std::string(128, 'a'));
    ConvAlgoChoice got;
    REQUIRE(c.lookup(key, &got));
    CHECK(got.algo == 6);
    CHECK(got.math_type == 1);
    CHECK(got.workspace_bytes == 123456);
    ConvAlgoCache unwritable("/proc/resnest_no_such_dir/algos.tsv");
    unwritable.insert("k", {1, 0, 0, ""});
    CHECK_THAT(unwritable.last_warning(), Contains("stays in memory"));
    CHECK(unwritable.lookup("k", &got));
    CHECK(got.opaque.empty());
    // Hex round trip of a descriptor's bytes; anything but exactly two hex digits a byte is refused.
    const unsigned char bytes[5] = {0x00, 0x0f, 0xa0, 0xff, 0x5c};
    CHECK(bytes_to_hex(bytes, 5) == "000fa0ff5c");
    unsigned char back[5] = {};
    REQUIRE(hex_to_bytes("000FA0ff5c", back, 5));
    CHECK(std::memcmp(back, bytes, 5) == 0);
    CHECK_FALSE(hex_to_bytes("000fa0ff5", back, 5));
    CHECK_FALSE(hex_to_bytes("000fa0ff5g", back, 5));
    CHECK_FALSE(hex_to_bytes("000fa0ff5c00", back, 5));
    // With the hash after them: round trip; one digit changed anywhere, a digit short or more, or the plain
    // form (an entry from before the hash) are refused, and the output is left as it was.
    const std::string checked = bytes_to_checked_hex(bytes, 5);
    REQUIRE(checked.size() == 18);
    CHECK(checked.substr(0, 10) == "000fa0ff5c");
    unsigned char again[5] = {};
    REQUIRE(checked_hex_to_bytes(checked, again, 5));
    CHECK(std::memcmp(again, bytes, 5) == 0);
    for (size_t i = 0; i < checked.size(); i++) {
        std::string edited = checked;
        edited[i] = edited[i] == '7' ? '8' : '7';
        unsigned char out[5] = {1, 2, 3, 4, 5};
        INFO("digit " << i << " edited");
        CHECK_FALSE(checked_hex_to_bytes(edited, out, 5));
        CHECK(out[0] == 1);
    }
    CHECK_FALSE(checked_hex_to_bytes(checked.substr(0, 17), again, 5));
    CHECK_FALSE(checked_hex_to_bytes(checked + "00", again, 5));
    CHECK_FALSE(checked_hex_to_bytes("000fa0ff5c", again, 5));
    CHECK_FALSE(checked_hex_to_bytes(checked.substr(0, 10) + "zzzzzzzz", again, 5));
    // The option's three forms: no file, the default file, a named file.
    CHECK(conv_algo_cache_path("none").empty());
    CHECK(conv_algo_cache_path("") == conv_algo_cache_default_path());
    CHECK(conv_algo_cache_path("/tmp/algos.tsv") == "/tmp/algos.tsv");
}

TEST_CASE("the algorithm cache never appends to a file that is not one, nor to a folder", "[passes][cuda-host]") {
    test::TempDir dir;
    const ConvAlgoChoice choice{3, 1, 4096, ""};
    // A graph given as --algo-cache by mistake: read, found foreign, left byte for byte as it was.
    const std::string graph = dir.file("model.json");
    const std::string text = test::read_text(test::source_path("tests/fixtures/tiny/tiny_r2_k1_torch.json"));
    std::ofstream(graph) << text;
    {
        ConvAlgoCache cache(graph);
        CHECK(cache.loaded() == 0);
        CHECK_THAT(cache.last_warning(), Contains(graph + ": not a resnest algorithm cache") &&
                                             Contains("the file is left as it is; give another --algo-cache"));
        cache.insert("k", choice);
        ConvAlgoChoice got;
        CHECK(cache.lookup("k", &got));  // kept in memory
    }
    CHECK(test::read_text(graph) == text);
    // A folder: the same, nothing created inside it.
    ConvAlgoCache folder(dir.path.string());
    CHECK_THAT(folder.last_warning(), Contains("is a folder, not an algorithm cache file"));
    folder.insert("k", choice);
    CHECK(std::distance(std::filesystem::directory_iterator(dir.path), std::filesystem::directory_iterator()) == 1);
    // A cache file with one stale line among good ones is still a cache: appended to, one whole line a write.
    const std::string tsv = dir.file("algos.tsv");
    {
        ConvAlgoCache cache(tsv);
        cache.insert("a", choice);
    }
    std::ofstream(tsv, std::ios::app) << "not a cache line\n";
    {
        ConvAlgoCache cache(tsv);
        CHECK(cache.loaded() == 1);
        CHECK(cache.skipped_lines() == 1);
        cache.insert("b", ConvAlgoChoice{1, 0, 0, std::string(2000, 'a')});
    }
    ConvAlgoCache again(tsv);
    CHECK(again.loaded() == 2);
    ConvAlgoChoice got;
    REQUIRE(again.lookup("b", &got));
    CHECK(got.opaque == std::string(2000, 'a'));
}

TEST_CASE("a cuDNN graph engine's cached form: global index and knobs round trip, malformed records refused",
          "[passes][cuda-host]") {
    auto next = [] { return (int64_t)test::rng()(); };  // fresh values each run, negative ones included
    for (int knobs : {0, 1, 7, kMaxCudnnKnobs}) {
        CudnnEngineChoice c;
        c.global_index = next() & 0xffff;
        for (int k = 0; k < knobs; k++) c.knobs.emplace_back((next() & 0x7fffffff) % 1024, next());
        const std::string hex = encode_cudnn_engine_choice(c);
        CHECK(hex.size() == (size_t)(3 + 2 * knobs) * 16);
        CHECK(hex.size() <= kMaxOpaqueHex);  // the algorithm cache keeps it
        CudnnEngineChoice back;
        REQUIRE(decode_cudnn_engine_choice(hex, &back));
        CHECK(back.global_index == c.global_index);
        CHECK(back.knobs == c.knobs);
        // Every truncation, and one word more, is refused.
        for (size_t cut = 2; cut < hex.size(); cut += 2) CHECK_FALSE(decode_cudnn_engine_choice(hex.substr(0, cut), &back));
        CHECK_FALSE(decode_cudnn_engine_choice(hex + std::string(16, '0'), &back));
    }
    // Little-endian words: format 1, index 5, one knob (type 3, value -2).
    const std::string one = "0100000000000000" "0500000000000000" "0100000000000000" "0300000000000000"
                            "feffffffffffffff";
    CudnnEngineChoice got;
    REQUIRE(decode_cudnn_engine_choice(one, &got));
    CHECK(got.global_index == 5);
    REQUIRE(got.knobs.size() == 1);
    CHECK(got.knobs[0] == std::make_pair<int64_t, int64_t>(3, -2));
    got.global_index = 77;
    auto refused = [&](std::string hex) {
        bool ok = decode_cudnn_engine_choice(hex, &got);
        CHECK(got.global_index == 77);  // left alone
        return !ok;
    };
    std::string bad = one;
    bad[1] = '2';  // format 2
    CHECK(refused(bad));
    bad = one, bad[30] = 'f';  // a negative index (the top byte 0xf0)
    CHECK(refused(bad));
    bad = one, bad[33] = '2';  // two knobs announced, one there
    CHECK(refused(bad));
    bad = one, bad[51] = '4';  // knob type 0x403 = 1027
    CHECK(refused(bad));
    bad = one, bad[7] = 'x';  // not hex
    CHECK(refused(bad));
    CHECK(refused(std::string(128, 'a')));  // a cuBLASLt descriptor's 64 bytes are not an engine
    CHECK(refused(""));
    // A record with every knob slot used is an algorithm cache line that reads back.
    test::TempDir dir;
    const std::string path = (dir.path / "algos.tsv").string();
    CudnnEngineChoice full;
    full.global_index = 12;
    for (int k = 0; k < kMaxCudnnKnobs; k++) full.knobs.emplace_back(k, next());
    {
        ConvAlgoCache c(path);
        c.insert("graph", {3, 0, 1 << 20, encode_cudnn_engine_choice(full)});
    }
    {
        std::ofstream f(path, std::ios::app);
        f << "too long\t1\t0\t0\t" << std::string(kMaxOpaqueHex + 2, 'a') << "\n";
    }
    ConvAlgoCache reread(path);
    CHECK(reread.loaded() == 1);
    CHECK(reread.skipped_lines() == 1);
    ConvAlgoChoice entry;
    REQUIRE(reread.lookup("graph", &entry));
    REQUIRE(decode_cudnn_engine_choice(entry.opaque, &got));
    CHECK(got.global_index == 12);
    CHECK(got.knobs == full.knobs);
}

TEST_CASE("roofline arithmetic and card peaks", "[bench]") {
    CHECK(card_peak_tflops("NVIDIA H200", "fp16") == Approx(989.4));
    CHECK(card_peak_tflops("NVIDIA H100 80GB HBM3", "fp32") == Approx(66.9));
    CHECK(card_peak_tflops("NVIDIA A100", "fp16") == 0.0);
    CHECK(card_peak_bandwidth_tbs("NVIDIA H200") == Approx(4.8));
    // 1 TFLOP at 1000 TFLOP/s is 1 ms; 1 GB at 4 TB/s is 0.25 ms: compute bound.
    CHECK(roofline_floor_ms(1e12, 1e9, 1000.0, 4.0) == Approx(1.0));
    // 1 GFLOP and 8 GB at the same peaks: memory bound, 2 ms.
    CHECK(roofline_floor_ms(1e9, 8e9, 1000.0, 4.0) == Approx(2.0));
    CHECK(roofline_floor_ms(1e9, 8e9, 0.0, 4.0) == 0.0);
}
