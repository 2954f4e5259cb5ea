// cmd_inspect.cpp: `resnest inspect MODEL.json [--weights W] [--passes [--precision P]] [--json]`: nodes,
// parameters, MACs, arena; with --passes, of the graph the CUDA backend runs.
#include <algorithm>
#include <cstdio>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "resnest/engine.h"

namespace resnest_cli {

static const char* kInspectHelp =
    "usage: resnest inspect MODEL.json [--weights W.safetensors] [--passes [--precision P]] [--json]\n"
    "\n"
    "Loads and validates a resnest-graph and prints every node (op, output shape per image, parameters,\n"
    "MACs), the trainable parameter count (conv/linear weights and biases, BN gamma and beta), the MACs of\n"
    "conv and linear layers per image at the graph's input size, and the fp32 activation arena for batch 1.\n"
    "\n"
    "  --weights W     also check every tensor the graph needs in W (present, shape, dtype, finite values)\n"
    "  --passes        describe the graph as the CUDA backend runs it instead: after its rewrites (BN folded,\n"
    "                  residual adds and ReLUs fused into the convolutions as \"conv2d+bias+residual+relu\", the avd\n"
    "                  pool into split attention, RESNEST_RADIX_SPLIT, the input padded for tensor cores), and list\n"
    "                  the rewrites; needs no GPU; params then counts what the rewritten nodes hold\n"
    "  --precision P   with --passes: fp32, tf32 or fp16 (default fp16; only the input padding differs)\n"
    "  --json          print one JSON object instead (keys: name, graph, input_shape, params, macs,\n"
    "                  arena_bytes_batch1, node_count, nodes, weights; with --passes also precision, passes,\n"
    "                  folds: where our fp16 kernels may take a node into a convolution)\n";

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
    Args args = parse_args(argc, argv, 2,
                           {{"--weights", true}, {"--passes", false}, {"--precision", true}, {"--json", false},
                            {"--help", false}},
                           true);
    if (args.has("--help")) {
        std::fputs(kInspectHelp, stdout);
        return 0;
    }
    if (args.positional.size() != 1) throw UsageError{"takes exactly one MODEL.json (see --help)"};
    const std::string model = args.positional[0];
    const bool passes = args.has("--passes");
    if (args.has("--precision") && !passes)
        throw UsageError{"--precision describes the rewritten graph: use it with --passes"};
    const resnest::Precision precision = parse_flag_value(resnest::parse_precision, args.get("--precision", "fp16"));
    resnest::ModelSummary s = passes ? resnest::inspect_runtime_graph(model, precision) : resnest::inspect_model(model);
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
        if (passes) {
            j["precision"] = resnest::precision_name(precision);
            j["passes"] = s.passes;
            j["folds"] = s.folds;
        }
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
    int op_width = 16;  // fused ops ("split_attention+avg_pool2d") widen the column
    for (const auto& n : s.nodes) op_width = std::max(op_width, (int)n.op.size());
    std::printf("%-32s %-*s %-14s %12s %14s\n", "node", op_width, "op", "output", "params", "MACs");
    for (const auto& n : s.nodes)
        std::printf("%-32s %-*s %-14s %12s %14s\n", n.name.c_str(), op_width, n.op.c_str(),
                    dims(n.output_shape).c_str(), n.params ? with_commas(n.params).c_str() : "",
                    n.macs ? with_commas(n.macs).c_str() : "");
    std::printf("\nmodel      %s (%s)\n", s.name.c_str(), s.graph_path.c_str());
    std::printf("input      N x %s float32 NCHW\n", dims(s.input_shape).c_str());
    if (passes) {
        std::map<std::string, int> per_pass;  // "fold_batch_norm: bn into conv" -> fold_batch_norm
        for (const std::string& line : s.passes) per_pass[line.substr(0, line.find(':'))]++;
        std::string counts;
        for (const auto& p : per_pass) counts += (counts.empty() ? "" : ", ") + p.first + " " + std::to_string(p.second);
        std::printf("graph      as the CUDA backend runs it at %s, after %zu rewrites (%s)\n",
                    resnest::precision_name(precision), s.passes.size(), counts.c_str());
    }
    if (passes && !s.folds.empty()) {
        std::map<std::string, int> per_kind;  // "layer1.0.conv2.attn: pool into ..." -> pool
        for (const std::string& line : s.folds) {
            const size_t at = line.find(": ") + 2;
            per_kind[line.substr(at, line.find(" into ") - at)]++;
        }
        std::string counts;
        for (const auto& k : per_kind) counts += (counts.empty() ? "" : ", ") + k.first + " " + std::to_string(k.second);
        std::printf("folds      %zu our fp16 kernels may make with RESNEST_IMPLICIT_GEMM (%s; --json lists them)\n",
                    s.folds.size(), counts.c_str());
    }
    std::printf("nodes      %zu\n", s.nodes.size());
    std::printf("params     %s %s\n", with_commas(s.params).c_str(), passes ? "held by the rewritten nodes" : "trainable");
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
