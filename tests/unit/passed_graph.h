// passed_graph.h: a committed model's graph as the CUDA backend's passes leave it, and a node found by
// name, for the host tests of what the backend plans on it (test_fusion_pairs.cpp, test_node_traffic.cpp).
#pragma once
#include <catch2/catch.hpp>

#include <string>

#include "passes.h"
#include "test_helpers.h"
#include "weights.h"

namespace test {

// The graph of `model` (a path below the source tree) after the default passes, over random weights in
// [0.5, 1.5); split_radix_convolutions too where radix_split is not 0.
inline resnest::Graph passed_graph(const std::string& model, int64_t radix_split = 0) {
    resnest::Graph g = resnest::graph_load(source_path(model));
    resnest::HostWeights w;
    for (const resnest::WeightRequirement& r : g.weights)
        w.tensors[r.tensor] = random_floats((size_t)resnest::shape_numel(r.shape), 0.5f, 1.5f);
    resnest::run_graph_passes(g, w, nullptr);
    if (radix_split != 0) resnest::split_radix_convolutions(g, w, radix_split, nullptr);
    return g;
}

// The index of the node named `name`; fails the test case where there is none.
inline int node_index(const resnest::Graph& g, const std::string& name) {
    for (size_t i = 0; i < g.nodes.size(); i++)
        if (g.nodes[i].name == name) return (int)i;
    FAIL("no node " << name);
    return -1;
}

}  // namespace test
