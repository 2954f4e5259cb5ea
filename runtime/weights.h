// weights.h: binds a graph's weight tensors to a safetensors file, checking each one, and hands the
// backends float32 host copies.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "graph.h"
#include "safetensors.h"

namespace resnest {

struct HostWeights {
    std::map<std::string, std::vector<float>> tensors;  // name -> values (float32, converted from f16)
    int unused_in_file = 0;                             // tensors in the file the graph does not name

    // The tensor a node needs for a role; nullptr when the node has no such role.
    const float* find(const Node& node, const std::string& role) const;
};

// Every tensor the graph needs must be in the file with the expected shape, dtype F32 or F16, and finite
// values; otherwise throws resnest::Error naming the file, the tensor and the node that needs it. Weights
// whose metadata says they were trained with the other pooling semantics than the graph's config (PaddleClas
// "paddle" against official/timm "torch": the avd pool's divisor and the shortcut pool's rounding) are
// refused too, unless the converter was told to put them on this graph (forced_onto_semantics).
HostWeights bind_weights(const Graph& graph, const SafetensorsFile& file);

}  // namespace resnest
