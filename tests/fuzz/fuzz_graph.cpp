// fuzz_graph.cpp: libFuzzer target for the resnest-graph loader (runtime/graph.cpp) and the memory
// planner it feeds. Any input must end in a parsed graph or a resnest::Error; anything else (a crash, a
// sanitizer report, another exception type, a hang, runaway memory) is a finding. A graph that loads must
// be internally consistent: nodes in topological order, every tensor non-empty and within the limits, and
// a memory plan in which every tensor fits the arena.
//
// Build and run (see tests/fuzz/README.md):
//   bash tests/fuzz/run_fuzzers.sh 600          # every target, 600 s each
//   build-fuzz/tests/fuzz/fuzz_graph -dict=tests/fuzz/graph.dict -max_len=65536 \
//       tests/fuzz/corpus/graph                 # this target alone; add a crash file to replay it
#include <cstddef>  // size_t
#include <cstdint>  // uint8_t
#include <string>   // std::string

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
    for (int batch : {1, 7}) {
        resnest::MemoryPlan plan = resnest::plan_memory(g, batch, sizeof(float));
        for (size_t t = 0; t < g.tensors.size(); t++) {
            if (static_cast<int>(t) == g.input) continue;
            check(plan.offset[t] >= 0 && plan.offset[t] + plan.bytes[t] <= plan.arena_bytes);
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
