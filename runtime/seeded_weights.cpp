// seeded_weights.cpp: seeded random weights generated in the engine (see seeded_weights.h).
//
// Compiled with -ffp-contract=off (CMakeLists.txt): lo + (hi - lo) * u must round twice, as numpy does,
// for the bytes to equal random_weights.py's.
#include "seeded_weights.h"

#include <cmath>
#include <set>

#include "parallel_for.h"

namespace resnest {

namespace {

constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ull;

uint64_t fnv1a64(const std::string& text) {
    uint64_t h = 0xCBF29CE484222325ull;
    for (unsigned char c : text) h = (h ^ c) * 0x100000001B3ull;
    return h;
}

uint64_t splitmix64_mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// Names of batch_norm outputs that are the first input of an add: the end of a residual branch.
std::set<int> residual_branch_outputs(const Graph& g) {
    std::set<int> out;
    for (const Node& n : g.nodes) {
        if (n.op != OpType::add) continue;
        int producer = g.tensors[n.inputs[0]].producer;
        if (producer >= 0 && g.nodes[producer].op == OpType::batch_norm) out.insert(n.inputs[0]);
    }
    return out;
}

// The value range of one tensor: weights_tools/random_weights.py's value_range, rule for rule.
void value_range(const Graph& g, const WeightRequirement& w, const std::set<int>& residual, double* lo, double* hi) {
    const Node& node = g.nodes[w.node];
    std::string role = w.role;
    if (node.op == OpType::split_attention && role.rfind("bn_", 0) == 0) role = role.substr(3);
    bool is_matrix = w.role == "fc1_weight" || w.role == "fc2_weight" ||
                     (w.role == "weight" && (node.op == OpType::conv2d || node.op == OpType::linear));
    if (is_matrix) {
        int64_t fan_in = 1;
        for (size_t d = 1; d < w.shape.size(); d++) fan_in *= w.shape[d];
        double a = std::sqrt((node.op == OpType::linear ? 3.0 : 6.0) / (double)fan_in);
        *lo = -a, *hi = a;
        return;
    }
    bool is_bn = node.op == OpType::batch_norm || node.op == OpType::split_attention;
    if (is_bn && role == "weight") {
        bool branch_end = node.op == OpType::batch_norm && residual.count(node.output);
        *lo = branch_end ? 0.15 : 0.8, *hi = branch_end ? 0.35 : 1.2;
    } else if (is_bn && role == "running_var") {
        *lo = 0.5, *hi = 1.5;
    } else {
        *lo = -0.1, *hi = 0.1;  // BN beta and mean, conv/linear/fc1/fc2 biases
    }
}

}  // namespace

std::vector<float> seeded_uniform(uint64_t seed, const std::string& name, int64_t count, double lo, double hi) {
    const uint64_t key = fnv1a64(name) ^ (seed * kGolden);
    std::vector<float> out(count);
    for (int64_t i = 0; i < count; i++) {
        uint64_t z = splitmix64_mix(key + (uint64_t)(i + 1) * kGolden);
        double u = (double)(z >> 40) * (1.0 / (1 << 24));
        double span = hi - lo;
        double scaled = span * u;
        out[i] = (float)(lo + scaled);
    }
    return out;
}

HostWeights make_seeded_weights(const Graph& graph, uint64_t seed) {
    std::set<int> residual = residual_branch_outputs(graph);
    // Each tensor is drawn from its own counter-based stream, so the tensors are independent work items.
    std::vector<std::vector<float>> drawn(graph.weights.size());
    parallel_for_each_index((int64_t)graph.weights.size(), [&](int64_t k) {
        const WeightRequirement& w = graph.weights[k];
        double lo, hi;
        value_range(graph, w, residual, &lo, &hi);
        drawn[k] = seeded_uniform(seed, w.tensor, shape_numel(w.shape), lo, hi);
    });
    HostWeights out;
    for (size_t k = 0; k < drawn.size(); k++) out.tensors[graph.weights[k].tensor] = std::move(drawn[k]);
    return out;
}

}  // namespace resnest
