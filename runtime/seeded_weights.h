// seeded_weights.h: the engine's own seeded random weights, bit-identical to
// weights_tools/random_weights.py --seed S, so a benchmark needs no weight file at all.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "graph.h"
#include "weights.h"

namespace resnest {

// Element i of the tensor `name`: splitmix64(key + (i + 1) * golden) with key = FNV-1a(name) ^ seed * golden,
// its top 24 bits as u in [0, 1), then float(lo + (hi - lo) * u) computed in double (weights_tools/seeded.py).
std::vector<float> seeded_uniform(uint64_t seed, const std::string& name, int64_t count, double lo, double hi);

// Every tensor the graph needs, drawn with random_weights.py's ranges (He-uniform conv weights, BN
// statistics that keep activations O(1), small residual-branch gammas).
HostWeights make_seeded_weights(const Graph& graph, uint64_t seed);

}  // namespace resnest
