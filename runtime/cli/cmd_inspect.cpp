// cmd_inspect.cpp: `resnest inspect MODEL.json [--weights W] [--json]`: nodes, parameters, MACs, arena.
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "resnest/engine.h"

namespace resnest_cli {

static const char* kInspectHelp =
    "usage: resnest inspect MODEL.json [--weights W.safetensors] [--json]\n"
    "\n"
    "Loads and validates a resnest-graph and prints every node (op, output shape per image, parameters,\n"
    "MACs), the trainable parameter count (conv/linear weights and biases, BN gamma and beta), the MACs of\n"
    "conv and linear layers per image at the graph's input size, and the fp32 activation arena for batch 1.\n"
    "\n"
    "  --weights W   also check every tensor the graph needs in W (present, shape, dtype, finite values)\n"
    "  --json        print one JSON object instead (keys: name, graph, input_shape, params, macs,\n"
    "                arena_bytes_batch1, node_count, nodes, weights)\n";

static std::string with_commas(long long v) {
    std::string s = std::to_string(v), out;
    for (size_t i = 0; i < s.size(); i++) {
        if (i && (s.size() - i) % 3 == 0) out += ',';
        out += s[i];
    }
    return out;
}

static std::string dims(const std::vector<int64_t>& shape) {
    std::string s;
    for (size_t i = 0; i < shape.size(); i++) s += (i ? "x" : "") + std::to_string(shape[i]);
    return s;
}

int cmd_inspect(int argc, char** argv) {
    Args args = parse_args(argc, argv, 2, {{"--weights", true}, {"--json", false}, {"--help", false}}, true);
    if (args.has("--help")) {
        std::fputs(kInspectHelp, stdout);
        return 0;
    }
    if (args.positional.size() != 1) throw UsageError{"takes exactly one MODEL.json (see --help)"};
    const std::string model = args.positional[0];
    resnest::ModelSummary s = resnest::inspect_model(model);
    resnest::WeightsReport report;
    bool weights = args.has("--weights");
    if (weights) report = resnest::check_weights(model, args.get("--weights"));

    if (args.has("--json")) {
        nlohmann::json j;
        j["name"] = s.name;
        j["graph"] = s.graph_path;
        j["input_shape"] = s.input_shape;
        j["params"] = s.params;
        j["macs"] = s.macs;
        j["arena_bytes_batch1"] = s.arena_bytes_batch1;
        j["node_count"] = s.nodes.size();
        j["nodes"] = nlohmann::json::array();
        for (const auto& n : s.nodes)
            j["nodes"].push_back({{"name", n.name}, {"op", n.op}, {"output_shape", n.output_shape},
                                  {"params", n.params}, {"macs", n.macs}});
        if (weights) {
            j["weights"] = {{"path", args.get("--weights")}, {"tensors_checked", report.tensors_checked},
                            {"unused", report.unused}};
        }
        std::printf("%s\n", j.dump(1).c_str());
        return 0;
    }
    std::printf("%-32s %-16s %-14s %12s %14s\n", "node", "op", "output", "params", "MACs");
    for (const auto& n : s.nodes)
        std::printf("%-32s %-16s %-14s %12s %14s\n", n.name.c_str(), n.op.c_str(), dims(n.output_shape).c_str(),
                    n.params ? with_commas(n.params).c_str() : "", n.macs ? with_commas(n.macs).c_str() : "");
    std::printf("\nmodel      %s (%s)\n", s.name.c_str(), s.graph_path.c_str());
    std::printf("input      N x %s float32 NCHW\n", dims(s.input_shape).c_str());
    std::printf("nodes      %zu\n", s.nodes.size());
    std::printf("params     %s trainable\n", with_commas(s.params).c_str());
    std::printf("MACs       %s per image (%.3f G)\n", with_commas(s.macs).c_str(), s.macs / 1e9);
    std::printf("arena      %s bytes fp32 activations at batch 1 (%.2f MiB)\n",
                with_commas(s.arena_bytes_batch1).c_str(), s.arena_bytes_batch1 / 1048576.0);
    if (weights) {
        std::printf("weights    %s: %lld tensors checked (present, shape, dtype, finite)", args.get("--weights").c_str(),
                    (long long)report.tensors_checked);
        if (!report.unused.empty()) std::printf("; %zu unused in the file", report.unused.size());
        std::printf("\n");
    }
    return 0;
}

}  // namespace resnest_cli
