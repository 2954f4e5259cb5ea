// fuzz_graph.cpp: libFuzzer target for the resnest-graph loader (runtime/graph.cpp) and the memory
// planner it feeds. Any input must end in a parsed graph or a resnest::Error; anything else (a crash, a
// sanitizer report, another exception type, a hang, runaway memory) is a finding. A graph that loads must
// be internally consistent: nodes in topological order, every tensor non-empty and within the limits, and
// a memory plan (graph input in the arena or not) in which every tensor fits the arena, no two tensors alive
// at the same node share a byte (but an in-place output and its dying input), and the arena is not under
// the most bytes alive at one node.
//
// Build and run (see tests/fuzz/README.md):
//   bash tests/fuzz/run_fuzzers.sh 600          # every target, 600 s each
//   build-fuzz/tests/fuzz/fuzz_graph -dict=tests/fuzz/graph.dict -max_len=65536 \
//       tests/fuzz/corpus/graph                 # this target alone; add a crash file to replay it
#include <cstddef>  // size_t
#include <cstdint>  // uint8_t
#include <string>   // std::string
#include <utility>  // std::pair
#include <vector>   // std::vector

#include "graph.h"          // resnest::graph_parse, kGraph* limits
#include "planner.h"        // resnest::plan_memory
#include "resnest/error.h"  // resnest::Error

namespace {

void check(bool ok) {
    if (!ok) __builtin_trap();  // an invariant of a loaded graph does not hold
}

void check_graph(const resnest::Graph& g) {
    check(!g.nodes.empty() && g.input == 0 && !g.outputs.empty());
    for (size_t i = 0; i < g.nodes.size(); i++) {
        const resnest::Node& n = g.nodes[i];
        check(n.output >= 0 && static_cast<size_t>(n.output) < g.tensors.size());
        check(g.tensors[n.output].producer == static_cast<int>(i));
        for (int t : n.inputs) {
            check(t >= 0 && static_cast<size_t>(t) < g.tensors.size());
            check(g.tensors[t].producer < static_cast<int>(i));  // topological order
        }
        for (const resnest::WeightRequirement& w : resnest::node_weight_requirements(n, static_cast<int>(i)))
            check(!w.tensor.empty() && resnest::shape_numel(w.shape) > 0);
    }
    for (const resnest::TensorInfo& t : g.tensors) {
        int64_t numel = resnest::shape_numel(t.shape);
        check(!t.shape.empty() && numel > 0 && numel <= resnest::kMaxTensorElements);
    }
    // Live interval of each tensor (the input from -1, written before the first node).
    const int end = static_cast<int>(g.nodes.size());
    std::vector<std::pair<int, int>> live(g.tensors.size());
    for (size_t t = 0; t < g.tensors.size(); t++) {
        const resnest::TensorInfo& ti = g.tensors[t];
        const int last = ti.consumers.empty() ? ti.producer : ti.consumers.back();
        live[t] = {ti.producer, ti.is_output ? end : last};
    }
    for (int batch : {1, 7}) {
        for (bool input_in_arena : {false, true}) {
            resnest::MemoryPlan plan = resnest::plan_memory(g, batch, sizeof(float), input_in_arena);
            check(plan.arena_bytes >= plan.peak_live_bytes);
            for (size_t a = 0; a < g.tensors.size(); a++) {
                if (static_cast<int>(a) == g.input && !input_in_arena) {
                    check(plan.offset[a] == -1);
                    continue;
                }
                check(plan.offset[a] >= 0 && plan.offset[a] + plan.bytes[a] <= plan.arena_bytes);
                // No byte shared with a tensor alive at the same time, but an in-place output's dying input.
                for (size_t b = a + 1; b < g.tensors.size() && g.tensors.size() <= 4096; b++) {
                    if (static_cast<int>(b) == g.input && !input_in_arena) continue;
                    if (live[a].first > live[b].second || live[b].first > live[a].second) continue;
                    if (plan.offset[a] >= plan.offset[b] + plan.bytes[b] || plan.offset[b] >= plan.offset[a] + plan.bytes[a])
                        continue;
                    check(g.tensors[b].producer >= 0);  // b > a >= 0 = the input: a node's output
                    const resnest::Node& pb = g.nodes[g.tensors[b].producer];
                    bool reads_a = false;
                    for (int t : pb.inputs) reads_a |= t == static_cast<int>(a);
                    check(resnest::op_in_place_safe(pb.op) && reads_a && live[a].second == g.tensors[b].producer &&
                          static_cast<int>(a) != g.input && plan.offset[a] == plan.offset[b]);
                }
            }
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string text(reinterpret_cast<const char*>(data), size);
    try {
        resnest::Graph g = resnest::graph_parse(text, "<fuzz>");
        check_graph(g);
    } catch (const resnest::Error&) {
        // a clean refusal
    }
    return 0;
}
