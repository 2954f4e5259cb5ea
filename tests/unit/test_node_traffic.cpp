// test_node_traffic.cpp: the bytes each node moves for the profile's GB/s and roofline floor
// (runtime/node_traffic.h), on a small graph whose byte counts are written out by hand below, and on the
// committed models with every fold taken (what each fold saves, worked out from the tensors' shapes).
#include <catch2/catch.hpp>

#include <numeric>
#include <string>

#include "conv_as_gemm.h"
#include "fusion_pairs.h"
#include "node_traffic.h"
#include "passed_graph.h"

using namespace resnest;
using Catch::Matchers::Contains;

namespace {

// image (3, 8, 8) -> conv "u" (8, 8, 8) -> split attention "sa" (radix 2, 4 channels) (4, 8, 8)
// -> 1x1 conv "c3" (6, 8, 8) -> avg_pool "ap" 2x2 stride 2 (6, 4, 4) -> 1x1 conv "down" (5, 4, 4).
Graph small_graph() {
    const char* text = R"({
      "format": "resnest-graph", "version": 1, "name": "small",
      "input": {"name": "image", "shape": [-1, 3, 8, 8], "layout": "NCHW", "dtype": "float32"},
      "outputs": ["down"],
      "nodes": [
        {"name": "u", "op": "conv2d", "inputs": ["image"], "outputs": ["u"],
         "attrs": {"in_channels": 3, "out_channels": 8, "kernel": 3, "pad": 1}, "weights": {"weight": "u.w"}},
        {"name": "sa", "op": "split_attention", "inputs": ["u"], "outputs": ["sa"],
         "attrs": {"radix": 2, "cardinality": 1, "channels": 4, "inter_channels": 2},
         "weights": {"fc1_weight": "f1.w", "fc1_bias": "f1.b", "bn_weight": "bn.w", "bn_bias": "bn.b",
                     "bn_running_mean": "bn.m", "bn_running_var": "bn.v", "fc2_weight": "f2.w", "fc2_bias": "f2.b"}},
        {"name": "c3", "op": "conv2d", "inputs": ["sa"], "outputs": ["c3"],
         "attrs": {"in_channels": 4, "out_channels": 6, "kernel": 1}, "weights": {"weight": "c3.w"}},
        {"name": "ap", "op": "avg_pool2d", "inputs": ["c3"], "outputs": ["ap"], "attrs": {"kernel": 2, "stride": 2}},
        {"name": "down", "op": "conv2d", "inputs": ["ap"], "outputs": ["down"],
         "attrs": {"in_channels": 6, "out_channels": 5, "kernel": 1}, "weights": {"weight": "down.w"}}
      ]})";
    return graph_parse(text, "small.json");
}

// Node indices in small_graph().
enum { U, SA, C3, AP, DOWN };

double total(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0); }

}  // namespace

TEST_CASE("node traffic: the small graph, unfolded, counted by hand", "[node-traffic]") {
    const Graph g = small_graph();
    REQUIRE(g.nodes.size() == 5);
    const int batch = GENERATE(1, 3);
    const int e = GENERATE(2, 4);
    const std::vector<double> w = {11, 13, 17, 0, 19};
    const std::vector<double> b = node_traffic_bytes(g, PlanFolds{}, batch, e, w);
    REQUIRE(b.size() == 5);
    const double n = batch;
    // u: the NHWC input (its 3 channels as the graph pads them: none here) and U.
    CHECK(b[U] == n * (3 * 64 + 8 * 64) * e + 11);
    // sa: the pool reads U, the gate writes 8 float gates an image, the weighted sum reads U and the gates
    // and writes (4, 8, 8).
    CHECK(b[SA] == n * (8 * 64 * e + 8 * 4 + 8 * 64 * e + 8 * 4 + 4 * 64 * e) + 13);
    CHECK(b[C3] == n * (4 * 64 + 6 * 64) * e + 17);
    CHECK(b[AP] == n * (6 * 64 + 6 * 16) * e);
    CHECK(b[DOWN] == n * (6 * 16 + 5 * 16) * e + 19);
}

TEST_CASE("node traffic: each fold on the small graph, counted by hand", "[node-traffic]") {
    const Graph g = small_graph();
    const int e = 2, batch = 2;
    const double n = batch;
    const std::vector<double> w(5, 0.0);
    const std::vector<double> plain = node_traffic_bytes(g, PlanFolds{}, batch, e, w);

    SECTION("the weighted sum in c3: sa writes nothing, c3 reads U and the gates") {
        PlanFolds f;
        f.folded_in_conv = {-1, C3, -1, -1, -1};
        const std::vector<double> b = node_traffic_bytes(g, f, batch, e, w);
        CHECK(b[SA] == n * (8 * 64 * e + 8 * 4));
        CHECK(b[C3] == n * (8 * 64 * e + 8 * 4 + 6 * 64 * e));
        CHECK(b[U] == plain[U]);
        CHECK(b[AP] == plain[AP]);
        CHECK(total(plain) - total(b) == 2 * n * 4 * 64 * e);  // sa's output neither written nor read
    }
    SECTION("the average pool in down: ap moves nothing, down reads c3's output") {
        PlanFolds f;
        f.folded_in_conv = {-1, -1, -1, DOWN, -1};
        const std::vector<double> b = node_traffic_bytes(g, f, batch, e, w);
        CHECK(b[AP] == 0.0);
        CHECK(b[DOWN] == n * (6 * 64 + 5 * 16) * e);
        CHECK(total(plain) - total(b) == 2 * n * 6 * 16 * e);
    }
    SECTION("the pool's chunk sums, written by sa's pool kernel or by u's epilogue, read by the gate") {
        PlanFolds f;
        f.pool_chunks = {0, 3, 0, 0, 0};  // 3 chunk sums of 4 floats an image
        const std::vector<double> own = node_traffic_bytes(g, f, batch, e, w);
        CHECK(own[SA] == plain[SA] + 2 * n * 3 * 4 * 4);  // the pool writes them, the gate reads them
        CHECK(own[U] == plain[U]);
        f.pool_in_conv = {-1, U, -1, -1, -1};
        const std::vector<double> b = node_traffic_bytes(g, f, batch, e, w);
        CHECK(b[U] == plain[U] + n * 3 * 4 * 4);                       // u's epilogue writes them
        CHECK(b[SA] == plain[SA] - n * 8 * 64 * e + n * 3 * 4 * 4);  // no pool kernel: the gate reads them
        CHECK(total(own) - total(b) == n * 8 * 64 * e);               // the fold saves U's read, nothing else
    }
    SECTION("the stem reads the NCHW input in float") {
        PlanFolds f;
        f.stem_node = U;
        const std::vector<double> b = node_traffic_bytes(g, f, batch, e, w);
        CHECK(b[U] == plain[U] - n * 3 * 64 * e + n * 3 * 64 * 4);
        CHECK(b[SA] == plain[SA]);
    }
}

TEST_CASE("node traffic: a fold that names the wrong node, or vectors of the wrong size, are refused",
          "[node-traffic]") {
    const Graph g = small_graph();
    const std::vector<double> w(5, 0.0);
    PlanFolds f;
    f.folded_in_conv = {-1, DOWN, -1, -1, -1};  // down does not read sa's output
    REQUIRE_THROWS_WITH(node_traffic_bytes(g, f, 1, 2, w),
                        Contains("small.json") && Contains("node 'sa'") && Contains("not a convolution reading"));
    f.folded_in_conv = {C3, -1, -1, -1, -1};  // u is a convolution, not a pool or split attention
    REQUIRE_THROWS_WITH(node_traffic_bytes(g, f, 1, 2, w), Contains("node 'u'"));
    f.folded_in_conv = {-1, -1};
    REQUIRE_THROWS_WITH(node_traffic_bytes(g, f, 1, 2, w), Contains("folded_in_conv has 2 entries for 5 nodes"));
    REQUIRE_THROWS_WITH(node_traffic_bytes(g, PlanFolds{}, 1, 2, {1.0}), Contains("weight_bytes has 1 entries"));
    PlanFolds p;
    p.pool_in_conv = {-1, -1, U, -1, -1};  // c3 is no split attention
    REQUIRE_THROWS_WITH(node_traffic_bytes(g, p, 1, 2, w), Contains("node 'c3'") && Contains("not a convolution writing"));
    p.pool_in_conv = {-1, C3, -1, -1, -1};  // c3 does not write sa's input
    REQUIRE_THROWS_WITH(node_traffic_bytes(g, p, 1, 2, w), Contains("node 'sa'") && Contains("not a convolution writing"));
    p.pool_in_conv = {-1};
    REQUIRE_THROWS_WITH(node_traffic_bytes(g, p, 1, 2, w), Contains("pool_in_conv has 1 entries for 5 nodes"));
}

TEST_CASE("node traffic: every fold on the committed models saves what it should",
          "[node-traffic]") {
    for (const char* model : {"models/resnest50.json", "models/resnest50_fast_1s1x64d_torch.json"}) {
        INFO(model);
        const Graph g = test::passed_graph(model);
        const size_t count = g.nodes.size();
        const std::vector<double> w(count, 100.0);
        const int batch = 4, e = 2;
        const std::vector<double> plain = node_traffic_bytes(g, PlanFolds{}, batch, e, w);
        PlanFolds f;
        f.folded_in_conv.assign(count, -1);
        double saved = 0.0;
        int folds = 0;
        for (size_t i = 0; i < count; i++) {
            const int j = conv1x1_folding(g, (int)i);
            if (j < 0) continue;
            f.folded_in_conv[i] = j;
            saved += 2.0 * batch * e * (double)shape_numel(g.tensors[(size_t)g.nodes[i].output].shape);
            folds++;
        }
        CHECK(folds >= 16);  // every block's weighted sum, and the downsample paths' pools
        const std::vector<double> b = node_traffic_bytes(g, f, batch, e, w);
        CHECK(total(plain) - total(b) == Approx(saved).epsilon(1e-12));
        for (size_t i = 0; i < count; i++)
            if (f.folded_in_conv[i] >= 0 && g.nodes[i].op == OpType::avg_pool2d) CHECK(b[i] == w[i]);
        // Every split attention's pool in the epilogue of the convolution writing U as well (4 chunk sums an
        // image, whoever writes them): each saves exactly U's read.
        f.pool_chunks.assign(count, 0);
        f.pool_in_conv.assign(count, -1);
        for (size_t i = 0; i < count; i++)
            if (g.nodes[i].op == OpType::split_attention) f.pool_chunks[i] = 4;
        const std::vector<double> own_pools = node_traffic_bytes(g, f, batch, e, w);
        double u_reads = 0.0;
        int pools = 0;
        for (size_t i = 0; i < count; i++) {
            const int j = conv_writing_split_attention_input(g, (int)i);
            if (j < 0) continue;
            f.pool_in_conv[i] = j;
            u_reads += batch * e * (double)shape_numel(g.tensors[(size_t)g.nodes[i].inputs[0]].shape);
            pools++;
        }
        CHECK(pools == 16);
        const std::vector<double> in_convs = node_traffic_bytes(g, f, batch, e, w);
        CHECK(total(own_pools) - total(in_convs) == Approx(u_reads).epsilon(1e-12));
    }
}

TEST_CASE("node traffic: what each convolution or linear way moves beyond the node's tensors, counted by hand",
          "[node-traffic]") {
    const Graph g = small_graph();
    const int batch = GENERATE(1, 3);
    const int e = GENERATE(2, 4);
    const double n = batch;
    CHECK(node_way_bytes(g, U, batch, e, NodeWay{}) == 0.0);
    NodeWay im2col;
    im2col.im2col = true;  // u's matrix: 64 rows an image of 3x3 windows over 3 channels, written and read
    CHECK(node_way_bytes(g, U, batch, e, im2col) == 2 * n * 64 * 27 * e);
    im2col.dense_filter = true;  // one group: the dense filter is the filter
    CHECK(node_way_bytes(g, U, batch, e, im2col) == 2 * n * 64 * 27 * e);
    NodeWay split;
    split.lt_split = 4;
    split.lt_scheme = kReductionComputeType;  // c3's (8x8, 6) output in 4 float partials, written and read
    CHECK(node_way_bytes(g, C3, batch, e, split) == 2 * 4 * n * 64 * 6 * 4);
    split.lt_scheme = kReductionInPlace;  // splits 2 to 4 each read and write the output
    CHECK(node_way_bytes(g, C3, batch, e, split) == 2 * 3 * n * 64 * 6 * e);
    split.lt_scheme = kReductionOutputType;  // 4 partials in the output type, written and read
    CHECK(node_way_bytes(g, C3, batch, e, split) == 2 * 4 * n * 64 * 6 * e);
    NodeWay ours;
    ours.partial_bytes = 12345;
    CHECK(node_way_bytes(g, DOWN, batch, e, ours) == 2 * 12345.0);
    NodeWay pass;
    pass.bias_pass = true;  // down's (4x4, 5) output read and written again
    CHECK(node_way_bytes(g, DOWN, batch, e, pass) == 2 * n * 16 * 5 * e);
}

TEST_CASE("node traffic: on ResNeSt50, a grouped convolution's dense filter, a residual bias pass and the "
          "classifier's", "[node-traffic]") {
    const Graph g = test::passed_graph("models/resnest50.json");
    auto index = [&](const std::string& name) { return (size_t)test::node_index(g, name); };
    const int batch = 2, e = 2;
    const double n = batch;
    // layer1.0.conv2.conv: 64 -> 128 channels, 3x3, 2 groups, 56x56. Its matrix: 3136 rows an image of 9 x 64
    // columns; its dense filter 128 x 9 x 64, of which the grouped filter is half.
    NodeWay dense;
    dense.im2col = dense.dense_filter = true;
    CHECK(node_way_bytes(g, index("layer1.0.conv2.conv"), batch, e, dense) ==
          2 * n * 3136 * 576 * e + 128 * 9 * 32 * e);
    // conv1.0: stride 2, 3 -> 32 channels, 224x224 -> 112x112: the matrix has a row per output position.
    const Node& stem = g.nodes[index("conv1.0")];
    REQUIRE(stem.conv.in_channels == 3);  // pad_input_channels is not among run_graph_passes
    NodeWay im2col;
    im2col.im2col = true;
    CHECK(node_way_bytes(g, index("conv1.0"), batch, e, im2col) == 2 * n * 112 * 112 * 27 * e);
    // layer1.0.conv3 (64 -> 256, no residual) and layer1.1.conv3 (the same with the residual): the pass
    // reads y and writes it again either way; the residual is the node's input, which node_traffic_bytes counts.
    const Node& residual = g.nodes[index("layer1.1.conv3")];
    REQUIRE(residual.inputs.size() == 2);
    REQUIRE(g.nodes[index("layer1.0.conv3")].inputs.size() == 1);
    NodeWay pass;
    pass.bias_pass = true;
    CHECK(node_way_bytes(g, index("layer1.0.conv3"), batch, e, pass) == 2 * n * 3136 * 256 * e);
    CHECK(node_way_bytes(g, index("layer1.1.conv3"), batch, e, pass) == 2 * n * 3136 * 256 * e);
    CHECK(node_way_bytes(g, index("fc"), batch, e, pass) == 2 * n * 1000 * e);
    REQUIRE_THROWS_WITH(node_way_bytes(g, index("fc"), batch, e, im2col),
                        Contains("node 'fc'") && Contains("convolutions' ways"));
}

TEST_CASE("node traffic: a grouped convolution's dense filter is G - 1 more grouped filters", "[node-traffic]") {
    // image (8, 6, 6) -> conv "g4": 8 -> 16 channels, 3x3, 4 groups: a grouped filter of 16 x 9 x 2.
    const char* text = R"({
      "format": "resnest-graph", "version": 1, "name": "grouped",
      "input": {"name": "image", "shape": [-1, 8, 6, 6], "layout": "NCHW", "dtype": "float32"},
      "outputs": ["g4"],
      "nodes": [
        {"name": "g4", "op": "conv2d", "inputs": ["image"], "outputs": ["g4"],
         "attrs": {"in_channels": 8, "out_channels": 16, "kernel": 3, "pad": 1, "groups": 4},
         "weights": {"weight": "g4.w"}}
      ]})";
    const Graph g = graph_parse(text, "grouped.json");
    NodeWay way;
    way.dense_filter = true;
    CHECK(node_way_bytes(g, 0, 3, 2, way) == 3 * 16 * 9 * 2 * 2);
    way.im2col = true;  // 36 rows an image of 9 x 8 columns (every group's), and the filter
    CHECK(node_way_bytes(g, 0, 3, 2, way) == 2 * 3 * 36 * 72 * 2 + 3 * 16 * 9 * 2 * 2);
}

TEST_CASE("node traffic: every split the cuBLASLt choice may keep is a way node_way_bytes counts", "[node-traffic]") {
    const Graph g = small_graph();
    for (int scheme = 0; scheme <= 8; scheme++)
        for (bool fp16 : {false, true})
            for (int64_t products : {1, 2})
                for (int split : {2, 4, 32}) {
                    if (!split_k_reduction_allowed(fp16, products, split, scheme)) continue;
                    INFO("scheme " << scheme << ", fp16 " << fp16 << ", products " << products << ", split " << split);
                    NodeWay way;
                    way.lt_split = split, way.lt_scheme = scheme;
                    CHECK(node_way_bytes(g, C3, 1, fp16 ? 2 : 4, way) > 0.0);
                }
}

TEST_CASE("node traffic: a way that does not fit its node is refused, naming it", "[node-traffic]") {
    const Graph g = small_graph();
    NodeWay im2col;
    im2col.im2col = true;
    REQUIRE_THROWS_WITH(node_way_bytes(g, SA, 1, 2, im2col),
                        Contains("small.json") && Contains("node 'sa'") && Contains("only convolution and linear"));
    NodeWay unknown;
    unknown.lt_split = 2;
    unknown.lt_scheme = 3;
    REQUIRE_THROWS_WITH(node_way_bytes(g, C3, 1, 2, unknown), Contains("node 'c3'") && Contains("reduction 3"));
    NodeWay negative;
    negative.partial_bytes = -1;
    REQUIRE_THROWS_WITH(node_way_bytes(g, DOWN, 1, 2, negative), Contains("node 'down'"));
    NodeWay no_split;
    no_split.lt_split = 0;
    REQUIRE_THROWS_WITH(node_way_bytes(g, DOWN, 1, 2, no_split), Contains("node 'down'") && Contains("below 1"));
    NodeWay pass;
    pass.bias_pass = true;
    REQUIRE_THROWS_WITH(node_way_bytes(g, AP, 1, 2, pass), Contains("node 'ap'"));
}
