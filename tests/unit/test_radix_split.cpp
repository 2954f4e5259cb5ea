// test_radix_split.cpp: split_radix_convolutions (passes.h) on the CPU: which blocks it rewrites in the
// committed models and how (nodes, shapes, weight slices), RESNEST_RADIX_SPLIT's values, and that the
// rewritten graph computes the same function: the tiny fixtures against their framework logits, and
// ResNeSt50 against the same engine without the rewrite.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "graph.h"
#include "npy.h"
#include "passes.h"
#include "../scoped_env.h"
#include "resnest/engine.h"
#include "test_helpers.h"
#include "weights.h"

using namespace resnest;
using Catch::Contains;

namespace {

// RESNEST_RADIX_SPLIT set for one scope, restored after.
struct RadixSplitEnv : test_env::ScopedEnv {
    explicit RadixSplitEnv(const char* value) : ScopedEnv("RESNEST_RADIX_SPLIT", value) {}
};

// The graph after the default passes, with weights drawn for it (values only matter for the slices).
struct Passed {
    Graph g;
    HostWeights w;
};
Passed passed(const std::string& model) {
    Passed p{graph_load(test::source_path(model)), {}};
    for (const WeightRequirement& r : p.g.weights)
        p.w.tensors[r.tensor] = test::random_floats((size_t)shape_numel(r.shape), 0.5f, 1.5f);
    run_graph_passes(p.g, p.w, nullptr);
    return p;
}

const Node* find_node(const Graph& g, const std::string& name) {
    for (const Node& n : g.nodes)
        if (n.name == name) return &n;
    return nullptr;
}

}  // namespace

TEST_CASE("split_radix_convolutions rewrites every radix-2 block of ResNeSt50 into one convolution pair per split",
          "[passes][radix-split]") {
    Passed p = passed("models/resnest50.json");
    const Graph before = p.g;
    const HostWeights weights_before = p.w;
    PassLog log;
    const int blocks = split_radix_convolutions(p.g, p.w, -1, &log);
    CHECK(blocks == 16);  // ResNeSt50's 3 + 4 + 6 + 3 blocks, all radix 2, cardinality 1
    CHECK(p.g.nodes.size() == before.nodes.size() + 2 * 16);  // conv1 and conv2 become two each
    CHECK((int)log.size() == 16);
    CHECK_THAT(log.front(), Contains("layer1.0.conv1") && Contains("layer1.0.conv2.conv") && Contains("apart"));
    int attn = 0;
    for (size_t i = 0; i < p.g.nodes.size(); i++) {
        const Node& n = p.g.nodes[i];
        for (int t : n.inputs) CHECK((t == p.g.input || p.g.tensors[t].producer < (int)i));  // still in order
        if (n.op != OpType::split_attention) continue;
        attn++;
        REQUIRE(n.inputs.size() == 2);
        for (int r = 0; r < 2; r++) {
            const int u = n.inputs[r];
            CHECK(p.g.tensors[u].shape[0] == n.attn.channels);
            const Node& conv2 = p.g.nodes[p.g.tensors[u].producer];
            CHECK(conv2.op == OpType::conv2d);
            CHECK(conv2.conv.groups == 1);
            CHECK(conv2.name.find(":split" + std::to_string(r)) != std::string::npos);
            const Node& conv1 = p.g.nodes[p.g.tensors[conv2.inputs[0]].producer];
            CHECK(conv1.name.find(":split" + std::to_string(r)) != std::string::npos);
            CHECK(conv1.conv.out_channels == conv2.conv.in_channels);
        }
    }
    CHECK(attn == 16);
    // Every weight the rewritten graph names is there with its shape's size.
    for (const WeightRequirement& r : p.g.weights) {
        INFO(r.tensor);
        REQUIRE(p.w.tensors.count(r.tensor) == 1);
        CHECK((int64_t)p.w.tensors.at(r.tensor).size() == shape_numel(r.shape));
    }
    // The slices: split 1 of layer2.1's conv2 is group 1 of the grouped filter (rows 128..255 of
    // (256, 64, 3, 3)) with its bias; split 1 of its conv1 is output channels 64..127 of (128, 512, 1, 1).
    const Node* old2 = find_node(before, "layer2.1.conv2.conv");
    const Node* new2 = find_node(p.g, "layer2.1.conv2.conv:split1");
    REQUIRE(old2);
    REQUIRE(new2);
    CHECK(new2->conv.in_channels == 64);
    CHECK(new2->conv.out_channels == 128);
    const std::vector<float>& w_old = weights_before.tensors.at(old2->weights.at("weight"));
    const std::vector<float>& w_new = p.w.tensors.at(new2->weights.at("weight"));
    REQUIRE(w_new.size() == (size_t)128 * 64 * 9);
    CHECK(std::equal(w_new.begin(), w_new.end(), w_old.begin() + 128 * 64 * 9));
    const std::vector<float>& b_old = weights_before.tensors.at(old2->weights.at("bias"));
    const std::vector<float>& b_new = p.w.tensors.at(new2->weights.at("bias"));
    CHECK(std::equal(b_new.begin(), b_new.end(), b_old.begin() + 128));
    const Node* old1 = find_node(before, "layer2.1.conv1");
    const Node* new1 = find_node(p.g, "layer2.1.conv1:split1");
    REQUIRE(old1);
    REQUIRE(new1);
    CHECK(new1->conv.out_channels == 64);
    const std::vector<float>& c_old = weights_before.tensors.at(old1->weights.at("weight"));
    const std::vector<float>& c_new = p.w.tensors.at(new1->weights.at("weight"));
    REQUIRE(c_new.size() == (size_t)64 * 512);
    CHECK(std::equal(c_new.begin(), c_new.end(), c_old.begin() + 64 * 512));
    // The whole filters the slices came from are read by nothing any more: drop_unread_weights, which every
    // load runs after its passes, takes them from the host weights.
    CHECK(drop_unread_weights(p.g, p.w) > 0);
    CHECK(p.w.tensors.count(old2->weights.at("weight")) == 0);
    CHECK(p.w.tensors.count(old1->weights.at("weight")) == 0);
    // A second run finds nothing left to rewrite.
    CHECK(split_radix_convolutions(p.g, p.w, -1, nullptr) == 0);
}

TEST_CASE("split_radix_convolutions takes only blocks within the position limit, and none at radix 1",
          "[passes][radix-split]") {
    {
        Passed p = passed("models/resnest50.json");
        // At 224x224: layer 3's blocks after the first and layer 4's first run conv2 at 14x14 (196
        // positions), layer 4's others at 7x7; layer 3's first runs at 28x28 (its avd pool comes after).
        CHECK(split_radix_convolutions(p.g, p.w, 196, nullptr) == 5 + 1 + 2);
        CHECK(find_node(p.g, "layer3.1.conv2.conv:split0"));
        CHECK(find_node(p.g, "layer3.0.conv2.conv"));  // 784 positions: left as it was
        CHECK_FALSE(find_node(p.g, "layer3.0.conv2.conv:split0"));
    }
    {
        Passed p = passed("models/resnest50.json");
        CHECK(split_radix_convolutions(p.g, p.w, 48, nullptr) == 0);  // the smallest, 7x7 = 49 positions, is over
    }
    {
        Passed p = passed("models/resnest50_fast_1s1x64d.json");  // radix 1: no grouped convolution
        CHECK(split_radix_convolutions(p.g, p.w, -1, nullptr) == 0);
    }
}

TEST_CASE("RESNEST_RADIX_SPLIT: off, all or a position count, and anything else is named", "[passes][radix-split]") {
    CHECK(radix_split_from(nullptr) == 0);
    CHECK(radix_split_from("") == 0);
    CHECK(radix_split_from("off") == 0);
    CHECK(radix_split_from("all") == -1);
    CHECK(radix_split_from("196") == 196);
    for (const char* bad : {"0", "-3", "layers3", "12x", "on"}) {
        INFO(bad);
        CHECK_THROWS_WITH(radix_split_from(bad), Contains("RESNEST_RADIX_SPLIT='" + std::string(bad) + "'") &&
                                                     Contains("all"));
    }
}

TEST_CASE("with the radix splits apart the CPU engine computes the same function (tiny fixtures, ResNeSt50)",
          "[passes][radix-split]") {
    std::ifstream f(test::source_path("tests/fixtures/fixtures.json"));
    nlohmann::json manifest = nlohmann::json::parse(f);
    int checked = 0, rewritten = 0;
    RadixSplitEnv all("all");
    for (const auto& fx : manifest["fixtures"]) {
        if (fx["kind"] != "tiny") continue;
        NpyArray x = npy_read(test::source_path(fx["input"]));
        NpyArray expected = npy_read(test::source_path(fx["expected"]));
        const int n = (int)x.shape[0];
        EngineOptions o;
        o.max_batch = n;
        o.passes = 1;
        auto e = Engine::load(test::source_path(fx["graph"]), test::source_path(fx["weights"]), o);
        bool split = false;
        for (const std::string& line : e->pass_log()) split |= line.rfind("split_radix_convolutions", 0) == 0;
        const auto& cfg = fx["config"];
        // Rewritten exactly where radix >= 2 and cardinality 1.
        CHECK(split == (cfg["radix"].get<int>() >= 2 && cfg["cardinality"].get<int>() == 1));
        rewritten += split;
        std::vector<float> y(expected.data.size(), NAN);
        e->create_context()->run(x.data.data(), n, y.data());
        INFO(fx["name"].get<std::string>());
        CHECK(test::max_rel_error(y.data(), expected.data.data(), y.size()) <= 1e-5);  // the framework's logits
        checked++;
    }
    CHECK(checked == 6);
    CHECK(rewritten == 2);  // tiny_r2_k1 from PaddleClas and from timm

    EngineOptions o;
    o.max_batch = 2;
    o.passes = 1;
    auto split = Engine::load_seeded(test::source_path("models/resnest50.json"), 5, o);
    std::shared_ptr<Engine> whole;
    {
        RadixSplitEnv off("off");
        whole = Engine::load_seeded(test::source_path("models/resnest50.json"), 5, o);
    }
    int lines = 0;
    for (const std::string& line : split->pass_log()) lines += line.rfind("split_radix_convolutions", 0) == 0;
    CHECK(lines == 16);
    std::vector<float> x = test::random_floats(2 * 3 * 224 * 224, -2, 2);
    std::vector<float> ya(2000, NAN), yb(2000, NAN);
    whole->create_context()->run(x.data(), 2, ya.data());
    split->create_context()->run(x.data(), 2, yb.data());
    CHECK(test::max_rel_error(yb.data(), ya.data(), ya.size()) <= 1e-5);
}

TEST_CASE("a RESNEST_RADIX_SPLIT that does not parse stops the load, naming the variable", "[passes][radix-split]") {
    RadixSplitEnv bad("layer3");
    EngineOptions o;
    o.passes = 1;
    CHECK_THROWS_WITH(Engine::load_seeded(test::source_path("models/resnest50_fast_1s1x64d.json"), 1, o),
                      Contains("RESNEST_RADIX_SPLIT='layer3'"));
}
