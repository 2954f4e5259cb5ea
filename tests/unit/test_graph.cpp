// test_graph.cpp: the graph loader on the committed models (counts from the shared spec §6) and on
// malformed graphs, each error asserted by its message.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "graph.h"
#include "resnest/error.h"
#include "test_helpers.h"

using namespace resnest;
using Catch::Contains;
using json = nlohmann::json;

namespace {

const Node& find_node(const Graph& g, const std::string& name) {
    for (const Node& n : g.nodes)
        if (n.name == name) return n;
    FAIL("no node " << name);
    throw 0;
}

// The spec's counts (§6): trainable parameters exactly, MACs within 0.5 %.
void check_counts(const std::string& file, int64_t params, double macs) {
    Graph g = graph_load(test::source_path("models/" + file));
    INFO(file);
    CHECK(g.params == params);
    CHECK(std::fabs(g.macs - macs) / macs < 0.005);
    CHECK(g.weights.size() == 405);  // spec §5b: 405 tensors without num_batches_tracked
    CHECK(g.tensors[g.outputs[0]].shape == Shape{1000});
}

}  // namespace

TEST_CASE("committed graphs have the spec's parameter and MAC counts", "[graph]") {
    check_counts("resnest50.json", 27483240, 5.371e9);
    check_counts("resnest50d_torch.json", 27483240, 5.371e9);
    check_counts("resnest50_fast_1s1x64d.json", 26217896, 4.329e9);
    check_counts("resnest50_fast_1s1x64d_torch.json", 26217896, 4.329e9);
}

TEST_CASE("ResNeSt50 shapes and avd placement follow the spec's block table", "[graph]") {
    Graph g = graph_load(test::source_path("models/resnest50.json"));
    auto shape = [&](const std::string& n) { return g.tensors[find_node(g, n).output].shape; };
    CHECK(shape("maxpool") == Shape{64, 56, 56});
    CHECK(shape("layer1.0.act3") == Shape{256, 56, 56});
    // avd_first = false: the radix conv of layer2.0 runs at 56, the pool comes after the attention.
    CHECK(shape("layer2.0.conv2.conv") == Shape{256, 56, 56});
    CHECK(shape("layer2.0.avd_last") == Shape{128, 28, 28});
    CHECK(shape("layer4.2.act3") == Shape{2048, 7, 7});
    CHECK(find_node(g, "layer2.0.avd_last").pool.count_include_pad == false);  // PaddleClas: exclusive
    CHECK(find_node(g, "layer2.0.downsample.0").pool.ceil_mode == false);
    const Node& attn = find_node(g, "layer3.1.conv2.attn");
    CHECK(attn.attn.radix == 2);
    CHECK(attn.attn.inter_channels == 128);

    Graph fast = graph_load(test::source_path("models/resnest50_fast_1s1x64d_torch.json"));
    auto fshape = [&](const std::string& n) { return fast.tensors[find_node(fast, n).output].shape; };
    // avd_first = true: pool first, then the 3x3 conv at 28.
    CHECK(fshape("layer2.0.avd_first") == Shape{128, 28, 28});
    CHECK(fshape("layer2.0.conv2.conv") == Shape{128, 28, 28});
    CHECK(find_node(fast, "layer2.0.avd_first").pool.count_include_pad == true);  // timm: divide by 9
    CHECK(find_node(fast, "layer2.0.downsample.0").pool.ceil_mode == true);
    CHECK(find_node(fast, "layer4.0.conv2.attn").attn.inter_channels == 128);
    CHECK(find_node(fast, "layer1.0.conv2.attn").attn.inter_channels == 32);
}

// ---------------------------------------------------------------------------------------------------
// Bad graphs. A small valid graph is edited one defect at a time.

namespace {

json small_graph() {
    return json::parse(R"({
      "format": "resnest-graph", "version": 1, "name": "small",
      "input": {"name": "image", "shape": [-1, 3, 8, 8], "layout": "NCHW", "dtype": "float32"},
      "outputs": ["fc"],
      "nodes": [
        {"name": "conv", "op": "conv2d", "inputs": ["image"], "outputs": ["conv"],
         "attrs": {"in_channels": 3, "out_channels": 4, "kernel": 3, "pad": 1}, "weights": {"weight": "conv.weight"}},
        {"name": "relu", "op": "relu", "inputs": ["conv"], "outputs": ["relu"]},
        {"name": "add", "op": "add", "inputs": ["relu", "conv"], "outputs": ["add"]},
        {"name": "pool", "op": "global_avg_pool", "inputs": ["add"], "outputs": ["pool"]},
        {"name": "fc", "op": "linear", "inputs": ["pool"], "outputs": ["fc"],
         "attrs": {"in_features": 4, "out_features": 2}, "weights": {"weight": "fc.weight", "bias": "fc.bias"}}
      ]})");
}

void require_error(const json& g, const std::string& message) {
    REQUIRE_THROWS_WITH(graph_parse(g.dump(), "g.json"), Contains(message));
}

}  // namespace

TEST_CASE("the small graph itself loads", "[graph]") {
    Graph g = graph_parse(small_graph().dump(), "g.json");
    CHECK(g.nodes.size() == 5);
    CHECK(g.params == 4 * 3 * 9 + 2 * 4 + 2);
    CHECK(g.macs == 4 * 8 * 8 * 3 * 9 + 4 * 2);
}

TEST_CASE("malformed JSON is reported with the file name", "[graph][bad-input]") {
    REQUIRE_THROWS_WITH(graph_parse("{\"format\": \"resnest-graph\", ", "g.json"), Contains("g.json: malformed JSON"));
    REQUIRE_THROWS_WITH(graph_load("/nonexistent/model.json"), Contains("/nonexistent/model.json: cannot open"));
}

TEST_CASE("format and version are checked", "[graph][bad-input]") {
    json g = small_graph();
    g["format"] = "onnx";
    require_error(g, "not a resnest-graph file");
    g = small_graph();
    g["version"] = 2;
    require_error(g, "version 2 is not supported");
}

TEST_CASE("unknown op names the node and lists the ops", "[graph][bad-input]") {
    json g = small_graph();
    g["nodes"][1]["op"] = "gelu";
    require_error(g, "g.json: node 'relu': unknown op 'gelu' (version 1 ops: conv2d, batch_norm");
}

TEST_CASE("duplicate node name", "[graph][bad-input]") {
    json g = small_graph();
    g["nodes"][1]["name"] = "conv";
    require_error(g, "node 'conv': duplicate node name");
}

TEST_CASE("dangling input", "[graph][bad-input]") {
    json g = small_graph();
    g["nodes"][3]["inputs"] = {"addd"};
    require_error(g, "node 'pool' (global_avg_pool): input 'addd' is not produced by any node");
}

TEST_CASE("a cycle is reported with its path", "[graph][bad-input]") {
    json g = small_graph();
    g["nodes"][0]["inputs"] = {"add"};  // conv <- add <- relu <- conv
    require_error(g, "the nodes form a cycle");
    require_error(g, "'conv'");
}

TEST_CASE("nodes listed out of order are sorted", "[graph]") {
    json g = small_graph();
    std::swap(g["nodes"][0], g["nodes"][4]);
    Graph parsed = graph_parse(g.dump(), "g.json");
    CHECK(parsed.nodes.front().name == "conv");
    CHECK(parsed.nodes.back().name == "fc");
}

TEST_CASE("attributes are typed, required and known", "[graph][bad-input]") {
    json g = small_graph();
    g["nodes"][0]["attrs"].erase("kernel");
    require_error(g, "node 'conv' (conv2d): missing required attribute 'kernel'");
    g = small_graph();
    g["nodes"][0]["attrs"]["kernal"] = 3;
    require_error(g, "node 'conv' (conv2d): unknown attribute 'kernal'");
    g = small_graph();
    g["nodes"][0]["attrs"]["stride"] = "2";
    require_error(g, "attribute 'stride' must be an integer >= 1 or a pair");
    g = small_graph();
    g["nodes"][0]["attrs"]["groups"] = 2;
    require_error(g, "groups 2 must divide in_channels 3");
}

TEST_CASE("shape mismatches name the node", "[graph][bad-input]") {
    json g = small_graph();
    g["nodes"][0]["attrs"]["in_channels"] = 4;
    require_error(g, "node 'conv' (conv2d): input 'image' has 3 channels but in_channels is 4");
    g = small_graph();
    g["nodes"][4]["attrs"]["in_features"] = 5;
    require_error(g, "node 'fc' (linear): input 'pool' has 4 channels but in_features is 5");
}

TEST_CASE("weight roles are checked", "[graph][bad-input]") {
    json g = small_graph();
    g["nodes"][0]["weights"] = json::object();
    require_error(g, "node 'conv' (conv2d): 'weights' has no 'weight' role");
    g = small_graph();
    g["nodes"][0]["weights"]["bias"] = "conv.bias";  // bias is false
    require_error(g, "unknown weight role 'bias'");
}

TEST_CASE("graph outputs must exist", "[graph][bad-input]") {
    json g = small_graph();
    g["outputs"] = {"logits"};
    require_error(g, "output 'logits' is not produced by any node");
}

TEST_CASE("PaddleClas semantics refuse sizes that are not multiples of 32", "[graph][bad-input]") {
    // Paddle's floor-mode shortcut pool gives 25 -> 12 while the avd pool gives 13.
    json g = json::parse(test::read_text(test::source_path("models/resnest50.json")));
    g["input"]["shape"] = {-1, 3, 200, 200};
    require_error(g, "differ in shape (with PaddleClas pooling semantics the input size must be a multiple of 32)");
    // The same size runs with torch semantics (ceil-mode shortcut pool).
    json t = json::parse(test::read_text(test::source_path("models/resnest50d_torch.json")));
    t["input"]["shape"] = {-1, 3, 200, 200};
    Graph parsed = graph_parse(t.dump(), "t.json");
    CHECK(parsed.tensors[find_node(parsed, "layer4.2.act3").output].shape == Shape{2048, 7, 7});
}

TEST_CASE("a ceil-mode pool window may reach past a small input, as in PyTorch, and a floor-mode one may not",
          "[graph]") {
    // PyTorch's output size: floor((in + 2p - k + (ceil ? s - 1 : 0)) / s) + 1, the last window dropped in
    // ceil mode where it would start past the input and its left padding.
    auto pooled = [](int in, bool ceil) {
        json g = json::parse(R"({
          "format": "resnest-graph", "version": 1, "name": "pool",
          "input": {"name": "x", "shape": [-1, 4, 1, 1], "layout": "NCHW", "dtype": "float32"},
          "outputs": ["p"],
          "nodes": [{"name": "p", "op": "avg_pool2d", "inputs": ["x"], "outputs": ["p"],
                     "attrs": {"kernel": 2, "stride": 2, "ceil_mode": false, "count_include_pad": false}}]})");
        g["input"]["shape"] = {-1, 4, in, in};
        g["nodes"][0]["attrs"]["ceil_mode"] = ceil;
        return graph_parse(g.dump(), "pool.json");
    };
    CHECK(pooled(1, true).tensors[find_node(pooled(1, true), "p").output].shape == Shape{4, 1, 1});
    CHECK(pooled(3, true).tensors[find_node(pooled(3, true), "p").output].shape == Shape{4, 2, 2});
    CHECK(pooled(3, false).tensors[find_node(pooled(3, false), "p").output].shape == Shape{4, 1, 1});
    REQUIRE_THROWS_WITH(pooled(1, false), Contains("pool.json") && Contains("the window does not fit the input [4, 1, 1]"));
    // So ResNeSt50-D (ceil-mode shortcut pools) takes 9 px, its last blocks at one pixel; PaddleClas's
    // floor-mode pools refuse sizes that are not multiples of 32 as before.
    json t = json::parse(test::read_text(test::source_path("models/resnest50d_torch.json")));
    t["input"]["shape"] = {-1, 3, 9, 9};
    Graph tiny = graph_parse(t.dump(), "t.json");
    CHECK(tiny.tensors[find_node(tiny, "layer4.2.act3").output].shape == Shape{2048, 1, 1});
}
