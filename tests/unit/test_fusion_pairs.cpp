// test_fusion_pairs.cpp: which neighbours of each split-attention node the CUDA backend may fold its pool
// and its weighted sum into (runtime/fusion_pairs.h), on the committed models after the default passes and
// after split_radix_convolutions.
#include <catch2/catch.hpp>

#include <algorithm>
#include <string>

#include "fusion_pairs.h"
#include "passed_graph.h"

using namespace resnest;

namespace {

bool starts_with(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

}  // namespace

TEST_CASE("each split-attention block's grouped convolution writes its input, and conv3 reads its output",
          "[fusion-pairs]") {
    for (const char* model : {"models/resnest50.json", "models/resnest50_fast_1s1x64d_torch.json"}) {
        INFO(model);
        const Graph g = test::passed_graph(model);
        int blocks = 0, writers = 0, readers = 0, avd_after = 0;
        for (int i = 0; i < (int)g.nodes.size(); i++) {
            const Node& n = g.nodes[(size_t)i];
            if (n.op != OpType::split_attention) continue;
            blocks++;
            INFO(n.name);
            // "layerX.Y.conv2.attn": its block's grouped convolution is "layerX.Y.conv2...", conv3 "layerX.Y.conv3".
            const std::string block = n.name.substr(0, n.name.find(".conv2"));
            const int w = conv_writing_split_attention_input(g, i);
            REQUIRE(w >= 0);
            CHECK(starts_with(g.nodes[(size_t)w].name, block + ".conv2"));
            CHECK(g.nodes[(size_t)w].output == n.inputs[0]);
            writers++;
            const int r = conv_reading_split_attention_output(g, i);
            avd_after += n.attn.fused_avg_pool;  // conv3 reads the pooled weighted sum: the fold pools too
            REQUIRE(r >= 0);
            CHECK(starts_with(g.nodes[(size_t)r].name, block + ".conv3"));
            CHECK(g.nodes[(size_t)r].inputs[0] == n.output);
            CHECK(g.nodes[(size_t)r].conv.in_channels == n.attn.channels);
            if (n.attn.fused_avg_pool)  // its output the pool's: half U's rows and columns
                CHECK(g.tensors[(size_t)n.output].shape[1] * 2 == g.tensors[(size_t)n.inputs[0]].shape[1]);
            readers++;
        }
        CHECK(blocks == 16);
        CHECK(writers == 16);
        CHECK(readers == 16);
        // ResNeSt50 places its avd pool after attention in the first block of layers 2-4; the fast model
        // places it first (before the grouped convolution), so nothing follows its attention.
        CHECK(avd_after == (std::string(model) == "models/resnest50.json" ? 3 : 0));
    }
}

TEST_CASE("each downsample average pool is read by its 1x1 convolution alone, and no other pool folds",
          "[fusion-pairs]") {
    for (const char* model : {"models/resnest50.json", "models/resnest50_fast_1s1x64d_torch.json"}) {
        INFO(model);
        const Graph g = test::passed_graph(model);
        int folds = 0, pools = 0;
        for (int i = 0; i < (int)g.nodes.size(); i++) {
            const Node& n = g.nodes[(size_t)i];
            const int j = conv_reading_avg_pool_output(g, i);
            INFO(n.name);
            if (n.op != OpType::avg_pool2d && n.op != OpType::max_pool2d) {
                CHECK(j == -1);
                continue;
            }
            pools++;
            // "layerX.0.downsample.0" (2x2 / 2) feeds "layerX.0.downsample.1"; the stem's max pool and the fast
            // model's avd pool before its 3x3 convolution do not fold.
            const bool downsample = n.name.find(".downsample.0") != std::string::npos;
            CHECK((j >= 0) == downsample);
            if (j < 0) continue;
            folds++;
            CHECK(g.nodes[(size_t)j].name == n.name.substr(0, n.name.size() - 1) + "1");
            CHECK(g.nodes[(size_t)j].inputs[0] == n.output);
            CHECK(g.nodes[(size_t)j].conv.kernel_h == 1);
        }
        CHECK(folds == 3);
        CHECK(pools == (std::string(model) == "models/resnest50.json" ? 4 : 7));
    }
    // A second reader of the pooled tensor, or a graph output, keeps the pool.
    Graph g = test::passed_graph("models/resnest50.json");
    int i = 0;
    while (i < (int)g.nodes.size() && conv_reading_avg_pool_output(g, i) < 0) i++;
    REQUIRE(i < (int)g.nodes.size());
    const int out = g.nodes[(size_t)i].output;
    g.tensors[(size_t)out].is_output = true;
    CHECK(conv_reading_avg_pool_output(g, i) == -1);
    g.tensors[(size_t)out].is_output = false;
    g.tensors[(size_t)out].consumers.push_back(i + 2);
    CHECK(conv_reading_avg_pool_output(g, i) == -1);
    g.tensors[(size_t)out].consumers.pop_back();
    g.nodes[(size_t)i].pool.stride_w = 1;  // not square
    CHECK(conv_reading_avg_pool_output(g, i) == -1);
}

TEST_CASE("with the radix splits apart, no split-attention block has a neighbour to fold into", "[fusion-pairs]") {
    const Graph g = test::passed_graph("models/resnest50.json", -1);
    int blocks = 0;
    for (int i = 0; i < (int)g.nodes.size(); i++) {
        if (g.nodes[(size_t)i].op != OpType::split_attention) continue;
        blocks++;
        INFO(g.nodes[(size_t)i].name);
        CHECK(g.nodes[(size_t)i].inputs.size() == 2);
        CHECK(conv_writing_split_attention_input(g, i) == -1);
        CHECK(conv_reading_split_attention_output(g, i) == -1);
    }
    CHECK(blocks == 16);
}

TEST_CASE("a split-attention output with a second reader, or a graph output, is not folded into conv3",
          "[fusion-pairs]") {
    Graph g = test::passed_graph("models/resnest50.json");
    int i = -1;
    for (int k = 0; k < (int)g.nodes.size() && i < 0; k++)
        if (g.nodes[(size_t)k].op == OpType::split_attention && !g.nodes[(size_t)k].attn.fused_avg_pool) i = k;
    REQUIRE(i >= 0);
    const int out = g.nodes[(size_t)i].output;
    REQUIRE(conv_reading_split_attention_output(g, i) >= 0);
    g.tensors[(size_t)out].is_output = true;
    CHECK(conv_reading_split_attention_output(g, i) == -1);
    g.tensors[(size_t)out].is_output = false;
    g.tensors[(size_t)out].consumers.push_back(g.tensors[(size_t)out].consumers[0] + 1);
    CHECK(conv_reading_split_attention_output(g, i) == -1);
    // And U with a second reader is not pooled by its convolution.
    const int u = g.nodes[(size_t)i].inputs[0];
    REQUIRE(conv_writing_split_attention_input(g, i) >= 0);
    g.tensors[(size_t)u].consumers.push_back(i + 1);
    CHECK(conv_writing_split_attention_input(g, i) == -1);
}

TEST_CASE("a memory plan with the folds' reads keeps each split attention's (and pool's) input until its conv",
          "[fusion-pairs][planner]") {
    for (const char* model : {"models/resnest50.json", "models/resnest50_fast_1s1x64d_torch.json"}) {
        INFO(model);
        const Graph g = test::passed_graph(model);
        const std::vector<ExtraRead> reads = conv1x1_fold_reads(g);
        CHECK(reads.size() == 16u + 3u);  // 16 weighted sums, 3 downsample average pools
        for (int batch : {1, 8}) {
            const MemoryPlan plain = plan_memory(g, batch, 2, true);
            const MemoryPlan kept = plan_memory(g, batch, 2, true, reads);
            int lost_without = 0;
            for (const ExtraRead& r : reads) {
                int i = -1;  // the folded node: the tensor's reader whose fold is r.node
                for (int c : g.tensors[(size_t)r.tensor].consumers)
                    if (conv1x1_folding(g, c) == r.node) i = c;
                REQUIRE(i >= 0);
                INFO("batch " << batch << ", " << g.nodes[(size_t)i].name);
                CHECK(tensor_kept_between(g, kept, r.tensor, i, r.node));
                lost_without += !tensor_kept_between(g, plain, r.tensor, i, r.node);
            }
            // Without the reads the plan is free to reuse U's bytes before conv3 runs (it does: the count is
            // printed). With them, the lengthened lives (i, conv3] of different blocks never overlap, nor
            // with a downsample pool's (its input kept one node longer, after conv3), so at most one tensor
            // more is alive at any node: the lower bound on the arena grows by at most the largest.
            int64_t largest_u = 0;
            for (const ExtraRead& r : reads)
                largest_u = std::max(largest_u, (kept.bytes[(size_t)r.tensor] + 63) / 64 * 64);
            CHECK(kept.peak_live_bytes <= plain.peak_live_bytes + largest_u);
            std::printf("%s batch %d: arena %lld bytes with the fold reads, %lld without; %d of %zu inputs written "
                        "over before conv3 without them\n", model, batch, (long long)kept.arena_bytes,
                        (long long)plain.arena_bytes, lost_without, reads.size());
        }
    }
}

TEST_CASE("tensor_kept_between sees an output placed over the tensor, and the tensor itself written again",
          "[fusion-pairs][planner]") {
    const Graph g = test::passed_graph("models/resnest50.json");
    MemoryPlan plan = plan_memory(g, 1, 2, true);
    // Two consecutive nodes: the first's output t, and the next node's output moved onto t's bytes.
    const int a = 1, b = 2;
    const int t = g.nodes[(size_t)a].output, next = g.nodes[(size_t)b].output;
    plan.offset[(size_t)next] = plan.offset[(size_t)t] + plan.bytes[(size_t)t] + 64;  // beside: kept
    CHECK(tensor_kept_between(g, plan, t, a, b));
    plan.offset[(size_t)next] = plan.offset[(size_t)t] + plan.bytes[(size_t)t] - 2;  // its last element: lost
    CHECK_FALSE(tensor_kept_between(g, plan, t, a, b));
    plan.offset[(size_t)next] = plan.offset[(size_t)t] - plan.bytes[(size_t)next] + 2;  // its first: lost
    CHECK_FALSE(tensor_kept_between(g, plan, t, a, b));
    CHECK(tensor_kept_between(g, plan, t, a, a));  // nothing runs in between
}

TEST_CASE("the library calls after a node: the run of convolutions and linear nodes right after it, ended by any "
          "other node",
          "[fusion-pairs]") {
    const Graph g = test::passed_graph("models/resnest50.json");
    auto index = [&](const std::string& name) { return test::node_index(g, name); };
    auto names = [&](const std::vector<int>& nodes) {
        std::vector<std::string> out;
        for (int j : nodes) out.push_back(g.nodes[(size_t)j].name);
        return out;
    };
    // As the default path runs at batch 1: the 1x1 convolutions on cuBLASLt, the 3x3 ones over im2col (our
    // gather first, which asks for its own matmul's filter).
    auto one_by_one = [&](int j) {
        const Node& n = g.nodes[(size_t)j];
        return n.op == OpType::linear || n.conv.kernel_h == 1;
    };
    using V = std::vector<std::string>;
    CHECK(names(library_calls_after(g, index("layer1.1.conv2.attn"), one_by_one, 3)) ==
          V{"layer1.1.conv3", "layer1.2.conv1"});
    // Layer 1's first block: conv3, its downsample convolution (no pool in layer 1), the next block's conv1.
    CHECK(names(library_calls_after(g, index("layer1.0.conv2.attn"), one_by_one, 3)) ==
          V{"layer1.0.conv3", "layer1.0.downsample.1", "layer1.1.conv1"});
    CHECK(names(library_calls_after(g, index("layer1.0.conv2.attn"), one_by_one, 1)) == V{"layer1.0.conv3"});
    // Layer 2's: the downsample path's average pool ends the run; the pool's own run is its convolution and
    // the next block's conv1.
    CHECK(names(library_calls_after(g, index("layer2.0.conv2.attn"), one_by_one, 3)) == V{"layer2.0.conv3"});
    CHECK(names(library_calls_after(g, index("layer2.0.downsample.0"), one_by_one, 3)) ==
          V{"layer2.0.downsample.1", "layer2.1.conv1"});
    // The stem's max pool: layer 1's conv1, then its 3x3 conv2.
    CHECK(names(library_calls_after(g, index("maxpool"), one_by_one, 3)) == V{"layer1.0.conv1"});
    // The last block: conv3, then the global pool, whose run is the classifier.
    CHECK(names(library_calls_after(g, index("layer4.2.conv2.attn"), one_by_one, 3)) == V{"layer4.2.conv3"});
    CHECK(names(library_calls_after(g, index("global_pool"), one_by_one, 3)) == V{"fc"});
    // None on a library: none.
    CHECK(library_calls_after(g, index("layer1.1.conv2.attn"), [](int) { return false; }, 3).empty());
    // Every split-attention node's run starts with the 1x1 convolution that reads its output.
    for (int i = 0; i < (int)g.nodes.size(); i++) {
        if (g.nodes[(size_t)i].op != OpType::split_attention) continue;
        const std::vector<int> run = library_calls_after(g, i, one_by_one, 3);
        REQUIRE_FALSE(run.empty());
        CHECK(run[0] == conv_reading_split_attention_output(g, i));
    }
}
