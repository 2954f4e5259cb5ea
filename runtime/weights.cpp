// weights.cpp: checks a safetensors file against a graph and converts the tensors it needs to float32, a
// tensor a thread.
#include "weights.h"

#include <cmath>
#include <cstring>
#include <set>

#include "parallel_for.h"
#include "resnest/error.h"

namespace resnest {

const float* HostWeights::find(const Node& node, const std::string& role) const {
    auto r = node.weights.find(role);
    if (r == node.weights.end()) return nullptr;
    auto t = tensors.find(r->second);
    return t == tensors.end() ? nullptr : t->second.data();
}

static std::string file_shape_str(const std::vector<int64_t>& shape) { return shape_str(shape); }

// One required tensor from the file, checked (present, shape, dtype, finite) and converted to float.
static std::vector<float> convert_tensor(const Graph& graph, const WeightRequirement& req,
                                         const SafetensorsFile& file) {
    const Node& node = graph.nodes[req.node];
    std::string who = file.path() + ": tensor '" + req.tensor + "' (role '" + req.role + "' of node '" + node.name +
                      "', " + op_name(node.op) + ")";
    const SafetensorsTensor* t = file.find(req.tensor);
    if (!t)
        throw Error(who + " is missing from the file, which holds " + std::to_string(file.tensors().size()) +
                    " tensors; are these weights for this graph? (`resnest inspect --weights` lists what "
                    "the graph needs)");
    if (t->shape != req.shape)
        throw Error(who + " has shape " + file_shape_str(t->shape) + " but the graph needs " + shape_str(req.shape));
    if (t->dtype != DType::F32 && t->dtype != DType::F16)
        throw Error(who + " has dtype " + dtype_name(t->dtype) + "; weights must be F32 or F16");
    int64_t count = shape_numel(req.shape);
    std::vector<float> values(count);
    if (t->dtype == DType::F32) {
        std::memcpy(values.data(), t->data, count * sizeof(float));
    } else {
        for (int64_t i = 0; i < count; i++) {
            uint16_t h;
            std::memcpy(&h, t->data + 2 * i, 2);
            values[i] = half_to_float(h);
        }
    }
    for (int64_t i = 0; i < count; i++)
        if (!std::isfinite(values[i]))
            throw Error(who + " holds a non-finite value (" + std::to_string(values[i]) + ") at flat index " +
                        std::to_string(i));
    return values;
}

// The pooling semantics weights were trained with, by the name the graphs' config gives them.
static const char* semantics_name(const std::string& s) {
    return s == "paddle" ? "PaddleClas pooling (the avd pool leaves padding out of its divisor)"
                         : "official/timm pooling (the avd pool divides by 9)";
}

static void check_semantics(const Graph& graph, const SafetensorsFile& file) {
    const auto& meta = file.metadata();
    auto value = [&](const char* key) {
        auto it = meta.find(key);
        return it == meta.end() ? std::string() : it->second;
    };
    const std::string weights = value("semantics");
    if (graph.semantics.empty() || (weights != "paddle" && weights != "torch") || weights == graph.semantics) return;
    if (value("forced_onto_semantics") == graph.semantics) return;  // convert.py --force onto this graph
    throw Error(file.path() + ": its metadata says these weights need " + semantics_name(weights) + ", but " +
                graph.source + " uses " + semantics_name(graph.semantics) + ": the logits would be off by percents; "
                "run them with a graph written with models/make_graph.py --semantics " + weights + " (" +
                (weights == "paddle" ? "models/resnest50.json, models/resnest50_fast_1s1x64d.json"
                                     : "models/resnest50d_torch.json, models/resnest50_fast_1s1x64d_torch.json") +
                "), or convert them with --force to put them on this one anyway");
}

HostWeights bind_weights(const Graph& graph, const SafetensorsFile& file) {
    check_semantics(graph, file);
    // Each tensor is checked and converted on its own (a tensor a thread: the copies and page faults of a
    // 100 MB file then overlap); the first error in the graph's order is the one reported.
    const size_t count_required = graph.weights.size();
    std::vector<std::vector<float>> converted(count_required);
    parallel_for_each_index((int64_t)count_required,
                            [&](int64_t k) { converted[k] = convert_tensor(graph, graph.weights[k], file); });
    HostWeights out;
    std::set<std::string> used;
    for (size_t k = 0; k < count_required; k++) {
        used.insert(graph.weights[k].tensor);
        out.tensors[graph.weights[k].tensor] = std::move(converted[k]);
    }
    for (const SafetensorsTensor& t : file.tensors())
        if (!used.count(t.name)) out.unused_in_file++;
    return out;
}

}  // namespace resnest
